// Read one object (all the versions it asks for) and render its files.
import { outputPaths } from '../objects.js';
import type { ObjectSpec, OutputFile } from '../object-spec.js';
import { ContentError, renderCertificate, renderKey, renderSecret } from './render.js';
import type { VaultReader, VersionInfo } from './vault-reader.js';

/** Runs one network call, retrying it as the fetch's policy says. */
export type Attempt = <T>(call: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface ObjectResult {
  files: OutputFile[];
  /** The versions written, newest first. */
  versions: string[];
}

/** Fetch `object` and return the files it writes. Network errors propagate; content errors are ContentError. */
export async function readObject(object: ObjectSpec, reader: VaultReader, attempt: Attempt): Promise<ObjectResult> {
  const versions = await versionsToWrite(object, reader, attempt);
  const paths = object.objectVersionHistory === 1 ? [object.objectAlias] : outputPaths(object);
  const contents = await Promise.all(versions.map((version) => readVersion(object, version, reader, attempt)));
  return {
    files: contents.map((c, i) => ({ path: paths[i] ?? object.objectAlias, data: c.data, mode: object.filePermission })),
    versions: contents.map((c) => c.version),
  };
}

/**
 * The enabled versions to write, newest first (by creation time), starting at `start` when given.
 * Fewer than `count` exist: all of them.
 */
export function selectVersions(all: VersionInfo[], start: string, count: number): string[] {
  const enabled = all
    .filter((v) => v.enabled)
    .sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0));
  let from = 0;
  if (start !== '') {
    from = enabled.findIndex((v) => v.version.toLowerCase() === start.toLowerCase());
    if (from < 0) {
      throw new ContentError(
        `objectVersion ${start} is not an enabled version`,
        'pick an enabled version for objectVersion (az keyvault secret list-versions), or leave it empty to start at the newest',
      );
    }
  }
  return enabled.slice(from, from + count).map((v) => v.version);
}

async function versionsToWrite(object: ObjectSpec, reader: VaultReader, attempt: Attempt): Promise<string[]> {
  if (object.objectVersionHistory === 1) return [object.objectVersion];
  const all = await attempt((signal) => reader.versions(object.objectType, object.objectName, signal));
  const versions = selectVersions(all, object.objectVersion, object.objectVersionHistory);
  if (versions.length === 0) {
    throw new ContentError('has no enabled version', 'enable a version in Key Vault, or mark the object optional');
  }
  return versions;
}

async function readVersion(object: ObjectSpec, version: string, reader: VaultReader, attempt: Attempt): Promise<{ version: string; data: Buffer }> {
  const name = object.objectName;
  switch (object.objectType) {
    case 'secret': {
      const content = await attempt((signal) => reader.secret(name, version, signal));
      return { version: content.version, data: await renderSecret(object, content) };
    }
    case 'key': {
      const key = await attempt((signal) => reader.key(name, version, signal));
      return { version: key.version, data: renderKey(key.jwk) };
    }
    case 'cert': {
      const cert = await attempt((signal) => reader.certificate(name, version, signal));
      return { version: cert.version, data: renderCertificate(cert.cer) };
    }
  }
}
