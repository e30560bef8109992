// Lets `node --import ./scripts/register-ts.mjs src/main.ts` run TypeScript sources directly:
// types are stripped with swc (type checking is `npm run typecheck`), `.js` import suffixes map to `.ts`.
import { register } from 'node:module';
register('./ts-hooks.mjs', import.meta.url);
