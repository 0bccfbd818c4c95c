// The projected service-account token (AZURE_FEDERATED_TOKEN_FILE), read so that no file can block the fetch or
// make it hold more than a token: opened without blocking, a regular file only, at most MAX_TOKEN_FILE_BYTES.
import { constants, type Stats } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** A projected token is 1–2 KB; anything this large is not one. */
export const MAX_TOKEN_FILE_BYTES = 64 * 1024;

/** Claims of the projected service-account token, safe to print (never the token itself). */
export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
}

/** The token file cannot be used: no retry will help, the pod's volume or environment must change. */
export class TokenFileError extends Error {
  constructor(
    readonly reason: string,
    readonly hint: string,
  ) {
    super(reason);
    this.name = 'TokenFileError';
  }
}

const VOLUME_HINT =
  'the kubelet writes it to the projected service-account token volume: check that the volume is mounted into the init container and AZURE_FEDERATED_TOKEN_FILE names the file in it';

/**
 * The token, trimmed. O_NONBLOCK keeps open(2) on a FIFO from waiting for a writer: a blocked call would hold
 * a thread of the pool, and Node.js cannot exit while one is blocked, whatever the deadline says.
 */
export async function readTokenFile(path: string): Promise<string> {
  let file: FileHandle;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw openError(path, (error as NodeJS.ErrnoException).code);
  }
  try {
    const info = await file.stat();
    if (!info.isFile()) throw new TokenFileError(`AZURE_FEDERATED_TOKEN_FILE ${path} is ${kindOf(info)}, not a regular file`, VOLUME_HINT);
    if (info.size > MAX_TOKEN_FILE_BYTES) throw tooLarge(path);
    // One byte more than allowed tells a file that grew since stat from one that fits.
    const buffer = Buffer.alloc(MAX_TOKEN_FILE_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_TOKEN_FILE_BYTES) throw tooLarge(path);
    }
    const token = buffer.subarray(0, length).toString('utf8').trim();
    if (token === '') throw new TokenFileError(`AZURE_FEDERATED_TOKEN_FILE ${path} is empty`, VOLUME_HINT);
    return token;
  } finally {
    await file.close();
  }
}

function openError(path: string, code: string | undefined): TokenFileError {
  if (code === 'ENOENT' || code === 'ENOTDIR') return new TokenFileError(`AZURE_FEDERATED_TOKEN_FILE ${path} does not exist`, VOLUME_HINT);
  if (code === 'EACCES' || code === 'EPERM') {
    return new TokenFileError(
      `AZURE_FEDERATED_TOKEN_FILE ${path} cannot be read (${code})`,
      "the init container's user must be able to read it: check the projected volume's defaultMode and the pod's fsGroup",
    );
  }
  return new TokenFileError(`AZURE_FEDERATED_TOKEN_FILE ${path} cannot be opened (${code ?? 'unknown error'})`, VOLUME_HINT);
}

function tooLarge(path: string): TokenFileError {
  return new TokenFileError(
    `AZURE_FEDERATED_TOKEN_FILE ${path} is larger than ${MAX_TOKEN_FILE_BYTES / 1024} KiB, far more than a service-account token`,
    VOLUME_HINT,
  );
}

function kindOf(info: Stats): string {
  if (info.isFIFO()) return 'a FIFO';
  if (info.isDirectory()) return 'a directory';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  if (info.isSocket()) return 'a socket';
  return 'not a file';
}

/** Decode the payload of a JWT without verifying it; undefined if it is not one. */
export function decodeTokenClaims(token: string): TokenClaims | undefined {
  const payload = token.trim().split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    return {
      ...(typeof claims.iss === 'string' ? { iss: claims.iss } : {}),
      ...(typeof claims.sub === 'string' ? { sub: claims.sub } : {}),
      ...(typeof claims.aud === 'string' || Array.isArray(claims.aud) ? { aud: claims.aud as string | string[] } : {}),
    };
  } catch {
    return undefined;
  }
}
