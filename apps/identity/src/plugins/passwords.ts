import argon2 from 'argon2';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/**
 * argon2id with the OWASP Password Storage Cheat Sheet parameters (m = 19 MiB, t = 2, p = 1). The
 * node-argon2 binding hashes on libuv's thread pool, off the event loop. Passwords are hashed and
 * verified exactly as typed: no trimming, no normalization, no truncation.
 */
export const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export interface Passwords {
  hash(password: string): Promise<string>;
  /** True when `password` matches `hash`; false for any malformed hash. */
  verify(hash: string, password: string): Promise<boolean>;
  /** Verifies against a throwaway hash: the same cost as a real check when there is no account. */
  verifyNothing(password: string): Promise<false>;
}

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords;
  }
}

export const passwordsPlugin = fp(async function passwords(app: FastifyInstance) {
  const dummy = await argon2.hash('pipp-no-such-account', ARGON2_OPTIONS);
  const verify = async (hash: string, password: string) => {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  };
  app.decorate('passwords', {
    hash: (password: string) => argon2.hash(password, ARGON2_OPTIONS),
    verify,
    async verifyNothing(password: string) {
      await verify(dummy, password);
      return false as const;
    },
  } satisfies Passwords);
}, { name: 'identity-passwords' });
