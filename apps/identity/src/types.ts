// The kit types `request.user` by augmenting @fastify/jwt; its declaration files do not import that
// module, so load its types here for the augmentation to apply in this package.
import type {} from '@fastify/jwt';
