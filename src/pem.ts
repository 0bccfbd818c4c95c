// PEM encoding of DER bytes (RFC 7468: 64-character lines).

/** Encode DER bytes as one PEM block with the given label, e.g. CERTIFICATE. */
export function derToPem(der: Uint8Array, label: string): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
