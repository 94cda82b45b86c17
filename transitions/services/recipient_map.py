"""The recipient map (Finding CH3, issue 6 part 5): for one child, every organisation that holds or held a version
of a pack, grouped by area, with what happened to each version over time (sent, confirmed, downloaded, expired,
revoked and why, or superseded by a newer version).

The area of an organisation is the local authority it is in: a local authority is its own area, a placement or
school names its area (``local_authority_id``), a ward its hospital's. A police force is put with the host area
of the move it was sent for when it covers that area; otherwise it is an area of its own (its ``area`` text).
Areas and organisations are listed in the order they first received something, so the page reads as the route
the child's information took.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from transitions.models import ORGANISATION_KIND_LABELS, Organisation, OrganisationKind, Pack, PackEvent, Transition
from transitions.services.accounts import StaffView
from transitions.services.audit import Actor
from transitions.services.children import Profile, _profiles, open_child
from transitions.services.deps import ServiceDeps
from transitions.services.packs import REVOKED_LABELS

ACTIVE, CONFIRMED, EXPIRED, REVOKED, SUPERSEDED = "active", "confirmed", "expired", "revoked", "superseded"
KIND_LABELS: dict[str, str] = {kind.value: label for kind, label in ORGANISATION_KIND_LABELS.items()}
STATE_LABELS = {ACTIVE: "Active – awaiting confirmation", CONFIRMED: "Active – confirmed", EXPIRED: "Expired",
                REVOKED: "Revoked", SUPERSEDED: "Superseded by a newer version"}


@dataclass(frozen=True)
class VersionState:
    """One pack version sent to one organisation, and where it stands now."""

    id: uuid.UUID
    reference: str
    version: int
    recipient_title: str
    #: What it was sent for: a move or admission (with its page), or a missing episode (police pack).
    transition_title: str
    transition_id: uuid.UUID | None
    sent_at: datetime
    expires_at: datetime
    confirmed_at: datetime | None
    confirmed_by: str
    first_viewed_at: datetime | None
    downloaded_at: datetime | None
    state: str
    #: When the link stopped working (expired, revoked or replaced); None while it works.
    ended_at: datetime | None
    #: Why it stopped, as staff read it on the board ("Revoked: the placement ended"), and the typed reason.
    ended_why: str
    revoked_reason: str

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def live(self) -> bool:
        return self.state in (ACTIVE, CONFIRMED)


@dataclass(frozen=True)
class Holder:
    id: uuid.UUID
    name: str
    kind_label: str
    versions: list[VersionState]

    @property
    def first_sent(self) -> datetime:
        return self.versions[0].sent_at

    @property
    def live(self) -> int:
        """Links that still work: what the organisation can open today (it may hold printed or downloaded copies
        of the others)."""
        return sum(1 for v in self.versions if v.live)

    @property
    def last_ended(self) -> datetime | None:
        return max((v.ended_at for v in self.versions if v.ended_at), default=None)


@dataclass(frozen=True)
class Area:
    key: str
    name: str
    #: The region (local authorities) or area text (police forces) the register gives it.
    region: str
    police_force: str
    holders: list[Holder]

    @property
    def first_sent(self) -> datetime:
        return min(h.first_sent for h in self.holders)


@dataclass(frozen=True)
class RecipientMap:
    child: Profile
    areas: list[Area]
    now: datetime

    @property
    def organisations(self) -> int:
        return sum(len(a.holders) for a in self.areas)

    @property
    def versions(self) -> int:
        return sum(len(h.versions) for a in self.areas for h in a.holders)

    @property
    def live(self) -> int:
        return sum(1 for a in self.areas for h in a.holders for v in h.versions if v.live)


def state_of(pack: Pack, now: datetime) -> tuple[str, datetime | None, str]:
    """(state, when the link stopped working, why). A link replaced after it ran out reads as expired."""
    if pack.revoked_at is not None and pack.revoked_at < pack.expires_at:
        if pack.revoked_cause == "reissued":
            return SUPERSEDED, pack.revoked_at, f"Replaced by version {pack.version + 1}"
        return REVOKED, pack.revoked_at, REVOKED_LABELS.get(pack.revoked_cause or "", "Revoked")
    if pack.expires_at <= now:
        why = "The link ran out"
        if pack.revoked_cause == "reissued":
            why += f"; version {pack.version + 1} was sent later"
        return EXPIRED, pack.expires_at, why
    return (CONFIRMED if pack.confirmed_at is not None else ACTIVE), None, ""


def _load_orgs(session: Session, ids: set[uuid.UUID], known: dict[uuid.UUID, Organisation]) -> None:
    missing = {i for i in ids if i and i not in known}
    if missing:
        known.update({o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(missing)))})


def _area_of(org: Organisation, host_la_id: uuid.UUID | None, orgs: dict[uuid.UUID, Organisation]
             ) -> Organisation | None:
    """The local authority an organisation is in; for a police force, the host area it covers (of the move it
    was sent for, or of the child's placement for a missing episode's pack)."""
    if org.kind == OrganisationKind.LOCAL_AUTHORITY:
        return org
    if org.local_authority_id:
        return orgs.get(org.local_authority_id)
    parent = orgs.get(org.parent_id) if org.parent_id else None
    if parent is not None and parent.local_authority_id:
        return orgs.get(parent.local_authority_id)
    if org.kind == OrganisationKind.POLICE_FORCE and host_la_id:
        host = orgs.get(host_la_id)
        if host is not None and host.police_force_id == org.id:
            return host
    return None


def recipient_map(deps: ServiceDeps, child_id: uuid.UUID, user: StaffView, actor: Actor) -> RecipientMap:
    """Whoever may read the child's record may read where its packs went; reading it is audited."""
    now = deps.clock.now()
    with deps.db.transaction() as session:
        child, _access = open_child(deps, session, child_id, user, actor, action="recipient_map.viewed")
        packs = list(session.scalars(select(Pack).where(Pack.child_id == child.id)
                                     .order_by(Pack.created_at, Pack.version, Pack.id)))
        transitions = {t.id: t for t in session.scalars(select(Transition).where(Transition.child_id == child.id))}
        orgs: dict[uuid.UUID, Organisation] = {}
        _load_orgs(session, {p.organisation_id for p in packs}
                   | {t.host_la_id for t in transitions.values() if t.host_la_id}
                   | {t.destination_id for t in transitions.values()}
                   | ({child.current_placement_id} if child.current_placement_id else set()), orgs)
        _load_orgs(session, {o.parent_id for o in list(orgs.values()) if o.parent_id}, orgs)
        _load_orgs(session, {o.local_authority_id for o in list(orgs.values()) if o.local_authority_id}, orgs)
        _load_orgs(session, {o.police_force_id for o in list(orgs.values()) if o.police_force_id}, orgs)
        firsts: dict[tuple[uuid.UUID, str], datetime] = {}
        if packs:
            for pack_id, action, at in session.execute(
                    select(PackEvent.pack_id, PackEvent.action, func.min(PackEvent.at))
                    .where(PackEvent.pack_id.in_([p.id for p in packs]), PackEvent.outcome == "ok",
                           PackEvent.action.in_(["viewed", "downloaded"]))
                    .group_by(PackEvent.pack_id, PackEvent.action)):
                firsts[(pack_id, action)] = at
        types, kinds = deps.definitions.recipient_types, deps.definitions.kinds
        placement = orgs.get(child.current_placement_id) if child.current_placement_id else None
        placement_la = _area_of(placement, None, orgs) if placement is not None else None
        by_org: dict[uuid.UUID, list[VersionState]] = {}
        area_for: dict[uuid.UUID, Organisation | None] = {}
        for pack in packs:
            transition = transitions.get(pack.transition_id) if pack.transition_id else None
            state, ended_at, why = state_of(pack, now)
            rtype = types.get(pack.recipient_type)
            kind = kinds.get(transition.kind) if transition else None
            where = orgs.get(transition.destination_id) if transition else None
            if transition is not None:
                title = (kind.title if kind else transition.kind) + (f" to {where.name}" if where else "")
            else:
                title = "Missing from care" if pack.episode_id else ""
            by_org.setdefault(pack.organisation_id, []).append(VersionState(
                id=pack.id, reference=pack.reference, version=pack.version,
                recipient_title=rtype.title if rtype else pack.recipient_type,
                transition_title=title,
                transition_id=pack.transition_id, sent_at=pack.created_at, expires_at=pack.expires_at,
                confirmed_at=pack.confirmed_at,
                confirmed_by=", ".join(x for x in (pack.confirmed_name or "", pack.confirmed_role or "") if x),
                first_viewed_at=firsts.get((pack.id, "viewed")), downloaded_at=firsts.get((pack.id, "downloaded")),
                state=state, ended_at=ended_at, ended_why=why, revoked_reason=pack.revoked_reason or ""))
            org = orgs.get(pack.organisation_id)
            if org is not None:
                host = transition.host_la_id if transition is not None else (placement_la.id if placement_la else None)
                area_for[org.id] = _area_of(org, host, orgs)  # the latest pack decides
        areas: dict[str, tuple[Organisation | None, Organisation | None, list[Holder]]] = {}
        for org_id, versions in by_org.items():
            org = orgs.get(org_id)
            if org is None:
                continue
            la = area_for.get(org_id)
            key = str(la.id) if la else (f"force:{org.id}" if org.kind == OrganisationKind.POLICE_FORCE
                                         else "unknown")
            holder = Holder(id=org.id, name=org.name, kind_label=KIND_LABELS.get(org.kind, org.kind),
                            versions=versions)
            areas.setdefault(key, (la, org if key.startswith("force:") else None, []))[2].append(holder)
        out = []
        for key, (la, force_org, holders) in areas.items():
            holders.sort(key=lambda h: (h.first_sent, h.name))
            if la is not None:
                force = orgs.get(la.police_force_id) if la.police_force_id else None
                out.append(Area(key=key, name=la.name, region=la.area or "", police_force=force.name if force else "",
                                holders=holders))
            elif force_org is not None:
                out.append(Area(key=key, name=force_org.area or force_org.name, region="",
                                police_force=force_org.name, holders=holders))
            else:
                out.append(Area(key=key, name="Area not recorded", region="", police_force="", holders=holders))
        out.sort(key=lambda a: (a.first_sent, a.name))
        return RecipientMap(child=_profiles(deps, session, [child])[0], areas=out, now=now)
