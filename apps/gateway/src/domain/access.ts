import type { Role } from '@pipp/contracts';
import type { PathClass } from './paths.js';

/** The verified caller, from the access token (or none for anonymous calls). */
export interface Actor {
  sub: string;
  role: Role;
  sid?: string | undefined;
}

/** Why a call is refused: 401 (no valid token) or 403 (valid token, not allowed). */
export interface Refusal {
  status: 401 | 403;
  message: string;
  clause?: string;
}

const STAFF: readonly Role[] = ['operator', 'dpo'];

/**
 * Decides whether `actor` may call a path of class `cls` (the URL convention, docs/architecture.md),
 * narrowed by the roles the route itself declares (`x-pipp-roles` in its service's OpenAPI document),
 * when it declares any:
 * - `public`, `document`: anyone, also without a token (policy 2.4.1(1));
 * - every other class needs a token (401 without one);
 * - `subject`: a data subject only for their own id (policy 4.1, 5.4: no access to another's PI);
 *   operators and the DPO for anyone's (audited, with a stated purpose); a service only where the
 *   route declares `service`;
 * - `admin`: operators and the DPO only (the route may narrow to one of them);
 * - `protected`: any role, or the roles the route declares.
 * @returns undefined when allowed, else the refusal.
 */
export function decideAccess(input: {
  cls: PathClass;
  actor: Actor | undefined;
  subjectId?: string | undefined;
  routeRoles?: readonly Role[] | undefined;
}): Refusal | undefined {
  const { cls, actor, subjectId, routeRoles } = input;
  if (cls === 'public' || cls === 'document') return undefined;
  if (!actor) return { status: 401, message: 'Authentication is required: send a bearer access token' };
  const declared = routeRoles && routeRoles.length ? routeRoles : undefined;
  const need = (roles: readonly Role[]): Refusal | undefined =>
    roles.includes(actor.role) ? undefined : { status: 403, message: `This needs one of the roles: ${roles.join(', ')}` };
  switch (cls) {
    case 'subject': {
      if (actor.role === 'subject') {
        if (declared && !declared.includes('subject')) return need(declared);
        return actor.sub === subjectId ? undefined : { status: 403, message: 'You may only reach your own data', clause: '5.4' };
      }
      if (actor.role === 'service') {
        return declared?.includes('service') ? undefined : { status: 403, message: "A service may reach a data subject's data only where the route allows services" };
      }
      return need(declared ?? STAFF);
    }
    case 'admin':
      return need(declared ? declared.filter((r) => STAFF.includes(r)) : STAFF);
    case 'protected':
      return declared ? need(declared) : undefined;
  }
}

/** True when the actor reaches a data subject's data other than their own (staff, services). */
export function actsForAnother(actor: Actor | undefined, subjectId: string | undefined): boolean {
  return Boolean(actor && subjectId && !(actor.role === 'subject' && actor.sub === subjectId));
}
