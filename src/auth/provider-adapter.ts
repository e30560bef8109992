// oidc-provider's storage adapter: clients in their own table (tenant-bound), every other model as a payload row
// (src/store/auth-payloads.ts). One class per model name, as oidc-provider expects.
import type { Deps } from '../core/deps.js';
import { consumePayload, deleteClient, destroyPayload, findClient, findPayload, findPayloadBy, revokeGrant, upsertClient, upsertPayload } from '../store/auth-payloads.js';
import { TENANT_PROPERTY } from './claims.js';

export function storeAdapter(deps: Deps) {
  const db = deps.db;
  return class PgAdapter {
    constructor(private readonly name: string) {}
    async upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      if (this.name === 'Client') {
        const tenantId = payload[TENANT_PROPERTY];
        if (typeof tenantId !== 'string') throw new Error('a client must name its tenant');
        return upsertClient(db, { clientId: id, tenantId, metadata: payload });
      }
      return upsertPayload(db, this.name, id, payload, expiresIn);
    }
    async find(id: string) {
      if (this.name === 'Client') return (await findClient(db, id))?.metadata as never;
      return findPayload(db, this.name, id) as never;
    }
    async findByUid(uid: string) {
      return findPayloadBy(db, this.name, 'uid', uid) as never;
    }
    async findByUserCode(code: string) {
      return findPayloadBy(db, this.name, 'user_code', code) as never;
    }
    async consume(id: string): Promise<void> {
      return consumePayload(db, this.name, id);
    }
    async destroy(id: string): Promise<void> {
      if (this.name === 'Client') {
        await deleteClient(db, id);
        return;
      }
      return destroyPayload(db, this.name, id);
    }
    async revokeByGrantId(grantId: string): Promise<void> {
      return revokeGrant(db, grantId);
    }
  };
}
