// Resource ids and types in URLs and bodies (http.html#general: id = [A-Za-z0-9\-\.]{1,64}).
import { isResourceType } from '../core/definitions.js';
import { FhirError } from '../core/errors.js';

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

export function assertId(id: string, where = 'id'): void {
  if (!ID_PATTERN.test(id)) {
    throw new FhirError('invalid', `Invalid resource id ${JSON.stringify(id.slice(0, 80))} in ${where}: ids are 1-64 characters of A-Z a-z 0-9 - .`, {
      code: 'ID_INVALID',
      expression: where === 'URL' ? undefined : ['id'],
    });
  }
}

export function assertResourceType(type: string): void {
  if (!isResourceType(type)) {
    throw new FhirError('not-found', `Unknown resource type '${type.slice(0, 80)}'`, { code: 'RESOURCE_TYPE_UNKNOWN', issueType: 'not-supported' });
  }
}
