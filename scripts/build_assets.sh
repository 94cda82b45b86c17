#!/bin/sh
# Build the front-end assets for CLA Transitions into static/govuk/ (git-ignored).
#
#   - copies the GOV.UK Frontend ES module (+ source map) and its assets/ folder
#     from node_modules/govuk-frontend (installed by `npm ci`, pinned to 6.3.0);
#   - compiles static/scss/la.scss (the Arial local-authority build, no
#     GDS Transport) into static/govuk/la.css;
#   - copies DejaVu Sans (regular and bold) and its licence from
#     node_modules/dejavu-fonts-ttf (pinned to 2.37.3) into
#     static/govuk/pdf-fonts/, for the handover-pack PDFs (transitions/pdf/fonts.py);
#   - writes static/govuk/VERSION.
#
# Run from anywhere: `npm run build:assets` (or `sh scripts/build_assets.sh`).
# Idempotent: static/govuk/ is rebuilt from scratch each time.
set -eu

ROOT=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd)
cd "$ROOT"

SRC=node_modules/govuk-frontend/dist/govuk
SASS=node_modules/.bin/sass
OUT=static/govuk
SCSS=static/scss/la.scss
FONTS=node_modules/dejavu-fonts-ttf
PDF_FONTS="DejaVuSans.ttf DejaVuSans-Bold.ttf"

fail() {
    echo "build_assets: $*" >&2
    exit 1
}

[ -d node_modules ] || fail "node_modules/ is missing; run 'npm ci --no-audit --no-fund' first"
[ -f "$SRC/govuk-frontend.min.js" ] || fail "$SRC/govuk-frontend.min.js not found; run 'npm ci --no-audit --no-fund'"
[ -d "$SRC/assets" ] || fail "$SRC/assets not found; run 'npm ci --no-audit --no-fund'"
[ -x "$SASS" ] || fail "$SASS not found; run 'npm ci --no-audit --no-fund' (sass is a devDependency)"
[ -f "$SCSS" ] || fail "$SCSS not found"
for font in $PDF_FONTS; do
    [ -f "$FONTS/ttf/$font" ] || fail "$FONTS/ttf/$font not found; run 'npm ci --no-audit --no-fund'"
done

VERSION=$(node -p 'require("./node_modules/govuk-frontend/package.json").version') \
    || fail "could not read the govuk-frontend version"
[ "$VERSION" = "6.3.0" ] || fail "govuk-frontend is $VERSION, expected exactly 6.3.0 (govuk-frontend-jinja 4.1.0 matches 6.3.0 only)"
FONT_VERSION=$(node -p 'require("./node_modules/dejavu-fonts-ttf/package.json").version') \
    || fail "could not read the dejavu-fonts-ttf version"
[ "$FONT_VERSION" = "2.37.3" ] || fail "dejavu-fonts-ttf is $FONT_VERSION, expected exactly 2.37.3"

# Build into a temporary folder next to the output, then swap it in, so a
# failed build never leaves a half-written static/govuk/.
TMP="$OUT.tmp.$$"
trap 'rm -rf "$TMP"' EXIT INT TERM
rm -rf "$TMP"
mkdir -p "$TMP"

cp "$SRC/govuk-frontend.min.js" "$SRC/govuk-frontend.min.js.map" "$TMP/"
cp -R "$SRC/assets" "$TMP/assets"

# GOV.UK-only branding is not for council services, and nothing in this
# service references it: the Royal coat of arms (govuk-crest.svg), the crown
# favicons and icons (favicon.ico/.svg and govuk-icon-* all show the crown),
# the GOV.UK OpenGraph image, the GOV.UK web manifest and the GDS Transport
# font files. In 6.3.0 that is everything in assets/; the folder is still
# copied so any new neutral asset in a later version comes through.
rm -f "$TMP/assets/images/govuk-crest.svg" \
      "$TMP/assets/images/favicon.ico" \
      "$TMP/assets/images/favicon.svg" \
      "$TMP/assets/images/govuk-icon-"* \
      "$TMP/assets/images/govuk-opengraph-image.png" \
      "$TMP/assets/manifest.json"
rm -rf "$TMP/assets/fonts"

"$SASS" --pkg-importer=node --style=compressed --no-source-map "$SCSS" "$TMP/la.css"

if grep -q 'GDS Transport' "$TMP/la.css"; then
    fail "la.css mentions GDS Transport; check \$govuk-font-family in $SCSS"
fi

# The PDF fonts (transitions/pdf/fonts.py), with the licence that must travel with them.
mkdir "$TMP/pdf-fonts"
for font in $PDF_FONTS; do
    cp "$FONTS/ttf/$font" "$TMP/pdf-fonts/"
done
cp "$FONTS/LICENSE" "$TMP/pdf-fonts/LICENSE"

printf 'govuk-frontend %s\nsass %s\ndejavu-fonts-ttf %s\n' "$VERSION" "$("$SASS" --version)" "$FONT_VERSION" \
    > "$TMP/VERSION"

rm -rf "$OUT"
mv "$TMP" "$OUT"
trap - EXIT INT TERM

echo "build_assets: built $OUT/ (govuk-frontend $VERSION, dejavu-fonts-ttf $FONT_VERSION)"
