import { createRequire } from 'node:module';
import { describe, expect, test } from '@jest/globals';
import * as ours from '../../src/db/pg-crypto.js';

// pg's own helpers (WebCrypto), which the bundle replaces with src/db/pg-crypto.ts
const pgs = createRequire(import.meta.url)('pg/lib/crypto/utils.js') as typeof ours;
const bytes = (b: ArrayBuffer | Uint8Array) => Buffer.from(b as ArrayBuffer).toString('hex');

describe("node:crypto in place of pg's WebCrypto helpers", () => {
  test('the same exports', () => {
    expect(Object.keys(ours).sort()).toEqual(Object.keys(pgs).sort());
  });

  test('SCRAM: the same salted password, client key, stored key and signatures, UTF-8 passwords included', async () => {
    for (const password of ['secret', "pa'ss w\u00f6rd \u{1F511}", '']) {
      const salt = Buffer.from('9a2f1c0e5b7d4a3c', 'hex');
      const [a, b] = [await ours.deriveKey(password, salt, 4096), await pgs.deriveKey(password, salt, 4096)];
      expect(bytes(a)).toBe(bytes(b));
      const [ka, kb] = [await ours.hmacSha256(a, 'Client Key'), await pgs.hmacSha256(b, 'Client Key')];
      expect(bytes(ka)).toBe(bytes(kb));
      expect(bytes(await ours.sha256(ka))).toBe(bytes(await pgs.sha256(kb)));
      const message = `n=,r=abc,r=abcdef,s=${salt.toString('base64')},i=4096,c=biws,r=abcdef \u00e9`;
      expect(bytes(await ours.hmacSha256(ka, message))).toBe(bytes(await pgs.hmacSha256(kb, message)));
    }
  });

  test('channel binding digests by WebCrypto name, and MD5 authentication', async () => {
    const cert = Buffer.from('a certificate, as DER bytes');
    for (const name of ['SHA-256', 'SHA-384', 'SHA-512']) expect(bytes(await ours.hashByName(name, cert))).toBe(bytes(await pgs.hashByName(name, cert)));
    const salt = Buffer.from([1, 2, 3, 4]);
    expect(await ours.postgresMd5PasswordHash('app', "pw'\u00f6", salt)).toBe(await pgs.postgresMd5PasswordHash('app', "pw'\u00f6", salt));
    expect(ours.randomBytes(18)).toHaveLength(18);
  });
});
