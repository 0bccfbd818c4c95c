// The identity values users give: a client ID is a GUID, a tenant ID a GUID or a verified domain.

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const TENANT = /^[0-9A-Za-z][0-9A-Za-z.-]{0,253}$/;

/** What is wrong with a client ID, or undefined when it is one. */
export function clientIdProblem(value: string): string | undefined {
  return GUID.test(value) ? undefined : 'is not a client ID (a GUID such as 00000000-0000-0000-0000-000000000000)';
}

/** What is wrong with a tenant ID, or undefined when it is one. */
export function tenantIdProblem(value: string): string | undefined {
  return TENANT.test(value) ? undefined : 'is not a tenant ID (a GUID or a domain such as contoso.onmicrosoft.com)';
}
