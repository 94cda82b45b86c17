"""L8: a full sign-in POST (first factor) divided by one argon2 verify with the same hasher, same process.

A = test-client POST /sign-in with the right email and password (CSRF token fetched once, untimed). It must
    return 302 to /sign-in/code; every timed POST is checked.
B = deps.hasher.verify(stored_hash, password): the very hasher instance the app uses, on the account's hash.

The app runs with TRANSITIONS_ENV=test settings but the PRODUCTION argon2 parameters (t=3, m=64 MiB, p=4),
set through a TOML file in TRANSITIONS_CONFIG, against a migrated SQLite file in a temporary folder. The
ratio shows how much a sign-in costs on top of the hash it cannot avoid. Goal <= 1.2 (alarm > 2.0).

    .venv/bin/python bench/b_login.py [--n 15] [--warmup 2] [--national /tmp/national/env.sh]

--national signs in as the typical social worker of a database made by bench/national.py (an env.sh, a SQLite
file or a URL, see national.open_target) instead of a fresh one-account database; its accounts are hashed with
the production parameters, and each sign-in adds its session row there as it would in production.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ratio import fmt_ratio, paired, verdict  # noqa: E402

TARGET, ALARM = 1.2, 2.0
PROD_ARGON2 = {"argon2_time_cost": 3, "argon2_memory_cost": 65536, "argon2_parallelism": 4}
CONFIG_TOML = """\
# Written by bench/b_login.py: test-mode settings with the production argon2id parameters.
[passwords]
argon2_time_cost = 3
argon2_memory_cost = 65536
argon2_parallelism = 4

[sign_in]
# The per-IP Flask-Limiter check still runs on every POST; only the ceiling is raised so a long run
# (--n 100) is not cut off by the production "100 per 5 minutes".
ip_limit = "100000 per 5 minutes"
"""


def run(n: int = 15, warmup: int = 2, national: str | None = None) -> dict[str, Any]:
    from tests.conftest import Browser, csrf_from, make_staff, migrate, test_environ
    from transitions.app import create_app
    from transitions.models import StaffUser
    from transitions.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="bench-login-") as tmp:
        tmp_path = Path(tmp)
        config = tmp_path / "bench.toml"
        config.write_text(CONFIG_TOML)
        if national:
            import national as generated

            from tests.conftest import StaffAccount

            target = generated.open_target(national)
            environ = {**target.environ, "TRANSITIONS_CONFIG": str(config)}
            worker = target.accounts["social_worker"]
        else:
            environ = test_environ(f"sqlite:///{tmp_path / 'bench.sqlite3'}", tmp_path / "instance",
                                   TRANSITIONS_CONFIG=str(config))
        settings = load_settings(environ)
        got = {k: getattr(settings.passwords, k) for k in PROD_ARGON2}
        assert got == PROD_ARGON2, f"production argon2 parameters not applied: {got}"
        assert settings.env == "test"

        app = create_app(settings)
        if not national:
            migrate(app)
        deps = app.extensions["transitions"]
        try:
            account = StaffAccount(worker.id, worker.email, worker.password, worker.totp_secret) if national \
                else make_staff(deps)
            with deps.db.transaction() as session:
                stored_hash = session.get(StaffUser, account.id).password_hash
            hasher = deps.hasher
            if national and hasher.needs_rehash(stored_hash):
                # Signed in before under test-mode settings: one untimed sign-in re-hashes it with the production
                # parameters, as the app does for any older hash.
                app.test_client_class = Browser
                warm = app.test_client()
                warm.post("/sign-in", data={"email": account.email, "password": account.password,
                                            "csrf_token": csrf_from(warm.get("/sign-in").get_data(as_text=True))})
                with deps.db.transaction() as session:
                    stored_hash = session.get(StaffUser, account.id).password_hash
            assert "m=65536,t=3,p=4" in stored_hash, stored_hash
            assert hasher.verify(stored_hash, account.password) is True
            assert not hasher.needs_rehash(stored_hash), "the POST would re-hash: not a plain sign-in"

            app.test_client_class = Browser
            client = app.test_client()
            token = csrf_from(client.get("/sign-in").get_data(as_text=True))
            form = {"email": account.email, "password": account.password, "csrf_token": token}
            posts = 0

            def sign_in_post() -> None:
                nonlocal posts
                response = client.post("/sign-in", data=form)
                posts += 1
                assert response.status_code == 302, (response.status_code, response.get_data(as_text=True)[:500])
                assert response.headers["Location"].endswith("/sign-in/code"), response.headers["Location"]

            def one_verify() -> None:
                assert hasher.verify(stored_hash, account.password) is True

            calls = _count_hasher_calls(hasher, sign_in_post)
            assert calls == {"verify": 1, "dummy_verify": 0, "hash": 0}, f"one POST did {calls}"

            result = paired(sign_in_post, one_verify, n=n, warmup=warmup)
            assert posts == 1 + warmup + n
        finally:
            deps.db.dispose()

    med = result["ratio"]["median"]
    result.update(
        name="L8 sign-in POST ÷ one argon2 verify" + (" (national)" if national else ""),
        target=TARGET,
        alarm=ALARM,
        verdict=verdict(med, TARGET, ALARM),
        argon2=PROD_ARGON2,
        hasher_calls_per_post=calls,
        database=environ["TRANSITIONS_DATABASE_URL"].split(":", 1)[0] + (" national" if national else " one account"),
        unit="s",
    )
    return result


def _count_hasher_calls(hasher: Any, fn: Any) -> dict[str, int]:
    """Run fn once with the hasher's methods wrapped, to prove a POST does exactly one real verify."""
    counts = {"verify": 0, "dummy_verify": 0, "hash": 0}
    originals = {name: getattr(hasher, name) for name in counts}

    def wrap(name: str) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return originals[name](*args, **kwargs)
        return wrapper

    for name in counts:
        object.__setattr__(hasher, name, wrap(name))
    try:
        fn()
    finally:
        for name in counts:
            object.__delattr__(hasher, name)
    return counts


def report(result: dict[str, Any]) -> str:
    return (f"sign-in POST ÷ one argon2 verify ({result['database']}): {fmt_ratio(result)}  "
            f"goal ≤ {TARGET} (alarm > {ALARM})  "
            f"[{result['verdict']}]\n"
            f"  POST median {result['a_med'] * 1e3:.1f} ms, verify median {result['b_med'] * 1e3:.1f} ms, "
            f"overhead ≈ {(result['a_med'] - result['b_med']) * 1e3:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--national", metavar="ENV_SH|SQLITE|URL", help="a database made by bench/national.py")
    args = parser.parse_args()
    os.chdir(REPO)
    print(report(run(args.n, args.warmup, args.national)))


if __name__ == "__main__":
    main()
