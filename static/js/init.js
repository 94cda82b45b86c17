// Initialise GOV.UK Frontend components. Loaded from base.html as
//   <script type="module" src="/static/js/init.js"></script>
// The import is relative to this file, so it resolves to
// /static/govuk/govuk-frontend.min.js (built by scripts/build_assets.sh) and
// still works if the app is mounted under a path prefix. Kept in a file (not
// inline) so the CSP needs no hash or nonce for it.
import { initAll } from '../govuk/govuk-frontend.min.js'

initAll()
