/**
 * lib/hash.ts: SHA-256 in hex, with Bun's native hasher (node:crypto would be loaded just for
 * this): migrations' checksums, socket folders' names, webhook endpoints, alert fingerprints.
 */

/** The SHA-256 of `data`, in hex. */
export function sha256(data: string | Uint8Array): string {
  return new Bun.CryptoHasher("sha256").update(data).digest("hex");
}
