// The program's version: package.json's, put into the bundle at build time (the image ships no package.json).
import packageJson from '../package.json' with { type: 'json' };

export const VERSION: string = packageJson.version;

/** The image this version is published as: what `render` injects unless told another. */
export const IMAGE = `ghcr.io/akv-injector/akv-injector:${VERSION}`;
