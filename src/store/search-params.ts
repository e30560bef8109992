// A tenant's own SearchParameter resources (search.html#custom), as stored: the per-tenant registry is built from them.
import type { SearchParameter } from '@medplum/fhirtypes';
import type { Db } from '../platform/db.js';

export async function loadSearchParameters(db: Db, tenantId: string): Promise<SearchParameter[]> {
  const r = await db.withTenant(tenantId, (q) =>
    q.query<{ content: SearchParameter }>(`SELECT content FROM resource WHERE tenant_id = $1 AND resource_type = 'SearchParameter' AND NOT deleted`, [tenantId]),
  );
  return r.rows.map((x) => x.content);
}
