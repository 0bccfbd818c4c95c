// Read one object (all the versions it asks for) and turn each into the bytes of its file.
import { outputPaths } from '../objects.js';
import type { ObjectSpec, OutputFile } from '../object-spec.js';
import { ContentError, certificateBytes, publicKeyBytes, secretBytes } from './content.js';
import type { VaultReader, VersionInfo } from './vault-reader.js';

/** Runs one network call, retrying it as the fetch's policy says. */
export type Attempt = <T>(call: (signal: AbortSignal) => Promise<T>) => Promise<T>;

export interface ObjectResult {
  files: OutputFile[];
  /** The versions written, newest first. */
  versions: string[];
  /** Why objectFormat pfx did not apply, when it did not (logged as a warning). */
  formatIgnored?: string;
}

/** Fetch `object` and return the files it writes. Network errors propagate; content errors are ContentError. */
export async function readObject(object: ObjectSpec, reader: VaultReader, attempt: Attempt): Promise<ObjectResult> {
  const versions = await versionsToWrite(object, reader, attempt);
  const paths = object.objectVersionHistory === 1 ? [object.objectAlias] : outputPaths(object);
  const contents = await Promise.all(versions.map((version) => readVersion(object, version, reader, attempt)));
  const formatIgnored = contents.find((c) => c.formatIgnored !== undefined)?.formatIgnored;
  return {
    files: contents.map((c, i) => ({ path: paths[i] ?? object.objectAlias, data: c.data, mode: object.filePermission })),
    versions: contents.map((c) => c.version),
    ...(formatIgnored !== undefined ? { formatIgnored } : {}),
  };
}

/** The version to start at: "latest" (any case), as the provider and its documentation read it, is the newest, as is empty. */
export function startVersion(objectVersion: string): string {
  return objectVersion.toLowerCase() === 'latest' ? '' : objectVersion;
}

/**
 * The enabled versions to write, newest first (by creation time), starting at `start` when given.
 * Fewer than `count` exist: all of them.
 */
export function selectVersions(all: VersionInfo[], start: string, count: number): string[] {
  const enabled = all.filter((v) => v.enabled).sort((a, b) => (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0));
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
  const start = startVersion(object.objectVersion);
  if (object.objectVersionHistory === 1) return [start];
  const all = await attempt((signal) => reader.versions(object.objectType, object.objectName, signal));
  const versions = selectVersions(all, start, object.objectVersionHistory);
  if (versions.length === 0) {
    throw new ContentError('has no enabled version', 'enable a version in Key Vault, or mark the object optional');
  }
  return versions;
}

interface VersionContent {
  version: string;
  data: Buffer;
  formatIgnored?: string;
}

async function readVersion(object: ObjectSpec, version: string, reader: VaultReader, attempt: Attempt): Promise<VersionContent> {
  const name = object.objectName;
  switch (object.objectType) {
    case 'secret': {
      const content = await attempt((signal) => reader.secret(name, version, signal));
      return { version: content.version, ...(await secretBytes(object, content)) };
    }
    case 'key': {
      const key = await attempt((signal) => reader.key(name, version, signal));
      return { version: key.version, data: publicKeyBytes(key.jwk) };
    }
    case 'cert': {
      const cert = await attempt((signal) => reader.certificate(name, version, signal));
      return { version: cert.version, data: certificateBytes(cert.cer) };
    }
  }
}
