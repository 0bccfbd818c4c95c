// The fetch role as one script (dist/fetch.cjs, run by code-cache.ts): its command, and the rehearsal the image build
// runs once to make the script's code cache.
export { fetchCommand } from './command.js';
export { rehearse } from './rehearsal.js';
