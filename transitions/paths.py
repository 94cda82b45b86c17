"""Where the top-level data folders are, in a checkout and in an installed wheel."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_WHEEL_DATA = PACKAGE_DIR / "_data"
REPO_ROOT = PACKAGE_DIR.parent
DATA_ROOT = _WHEEL_DATA if _WHEEL_DATA.is_dir() else REPO_ROOT

CONFIG_DIR = DATA_ROOT / "config"
TEMPLATES_DIR = DATA_ROOT / "templates"
STATIC_DIR = DATA_ROOT / "static"
#: DejaVu Sans for the handover-pack PDFs, copied here by `npm run build:assets` (scripts/build_assets.sh).
PDF_FONTS_DIR = STATIC_DIR / "govuk" / "pdf-fonts"
FORMS_DIR = DATA_ROOT / "forms"
#: Inside the package: editable installs cannot remap a folder of Python files into it.
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
