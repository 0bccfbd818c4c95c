// The one credential the fetch uses. The fetch imports @azure/identity through this module: a dynamic import of the
// package itself keeps every export in the bundle (the browser, device-code, CLI, PowerShell and developer
// credentials), where a static re-export lets the bundler leave out what nothing uses (test/bundle-roles.ts).
export { ClientAssertionCredential } from '@azure/identity';
