// The one credential the fetch uses. The fetch imports @azure/identity through this module: a dynamic import of the
// package itself keeps every export in the bundle (the browser, device-code, CLI and developer credentials, with
// child_process), where a static re-export lets the bundler leave out what nothing uses.
export { ClientAssertionCredential } from '@azure/identity';
