// The layers of src/, lowest first: a folder may import only folders before it in this list (STYLE.md §1, issue 9).
// Read by eslint.config.js (no-restricted-imports per folder) and tests/unit/architecture.test.ts (no cycles).
export const LAYERS = ['config', 'platform', 'core', 'terminology', 'search', 'store', 'jobs', 'fhir', 'tenancy', 'auth', 'subscriptions', 'export', 'admin', 'http', '(root)', 'cli'];

/** Packages only src/platform/ may import: the database, its embedded twin and the logger. */
export const DRIVERS = ['pg', '@electric-sql/pglite', '@electric-sql/pglite-socket', 'pino'];
