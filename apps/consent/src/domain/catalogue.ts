import {
  DATA_CATEGORIES, LEGAL_BASES, isClauseId, type DataCategory, type LegalBasis,
} from '@pipp/contracts';

/**
 * The catalogue of purposes and functions (policy 2.1, 2.4.1, 2.4.2(2)): data the DPO edits, seeded at
 * first start with the purposes every service relies on.
 *
 * - A **function** is something the product does for the subject (registration, personalised display…),
 *   either **basic** (2.1.1: its necessary information must be authorised, refusing blocks only that
 *   function) or **additional** (2.1.2: separately agreed, refusing never affects a basic function).
 * - A **purpose** is why data categories are processed; a function needs one or more purposes. A purpose
 *   declares the legal bases it admits (`consent` and/or exceptions of 2.4.2(4), 3.4), optionally a
 *   standing basis that covers every subject (security, 2.4.1(3)), and whether each processing needs a
 *   separate consent per recipient (3.1.2), per public disclosure (3.3.1) or per destination country
 *   (5.3.2). `policyClause` says where the general policy specifies the purpose; a purpose with none
 *   was not specified in the policy, so it is a new purpose that needs prior consent (2.4.2(2)).
 */

export type FunctionKind = 'basic' | 'additional';
/** What a processing under the purpose must name, each needing its own separate consent. */
export type SeparateDimension = 'recipient' | 'disclosure' | 'country';
export type NonConsentBasis = Exclude<LegalBasis, 'consent'>;

export interface Purpose {
  id: string;
  title: string;
  description: string;
  /** basic: may be needed by basic functions; additional: only by additional functions (2.1.2). */
  kind: FunctionKind;
  /** Clause of the general policy that specifies this purpose; null for a purpose added since (2.4.2(2)). */
  policyClause: string | null;
  /** The data categories this purpose may process (purpose limitation, 2.4.2(2)). */
  categories: DataCategory[];
  /** Admitted legal bases: `consent` and/or the exceptions of 2.4.2(4) / 3.4. Nothing else is accepted. */
  legalBases: LegalBasis[];
  /** A non-consent basis that covers every subject without per-request evidence, e.g. security (2.4.1(3)). */
  standingBasis: { legalBasis: NonConsentBasis; evidenceRef: string } | null;
  /** Each processing must name this and needs a separate consent for it (3.1.2, 3.3.1, 5.3.2). */
  requires: SeparateDimension | null;
  /** Granted by acknowledging the policy at registration (basic purposes the policy says must be authorised, 2.1.1). */
  grantedAtRegistration: boolean;
  /** Why the data is needed, shown to the subject in notices and refusals (2.1.1). */
  why: string;
  status: 'active' | 'retired';
}

export interface ProcessingFunction {
  id: string;
  title: string;
  kind: FunctionKind;
  /** Purposes the function needs. A basic function needs only basic purposes (2.1.2). */
  purposes: string[];
  /** Data categories the function needs (each within one of its purposes). */
  categories: DataCategory[];
  /** Why the function needs the data, shown when a refusal blocks it (2.1.1). */
  why: string;
  status: 'active' | 'retired';
}

export interface Catalogue {
  purposes: Purpose[];
  functions: ProcessingFunction[];
}

/** Categories never shared, disclosed or transferred: credentials and internal records. */
const INTERNAL: DataCategory[] = ['credentials', 'identity-verification', 'session', 'consent-record', 'erasure-request', 'notification-record'];
const EXTERNAL_CATEGORIES = (Object.keys(DATA_CATEGORIES) as DataCategory[]).filter((c) => !INTERNAL.includes(c));
/** The exceptions of 3.4 (sharing, transfer and public disclosure without prior consent). */
const SHARING_EXCEPTIONS = (Object.keys(LEGAL_BASES) as LegalBasis[]).filter((b) => b !== 'consent' && LEGAL_BASES[b].sharingClause !== null);

/** The catalogue seeded at first start: the well-known purposes and their functions. */
export const SEED_CATALOGUE: Catalogue = {
  purposes: [
    {
      id: 'account', title: 'Your account', kind: 'basic', policyClause: '2.4.1(1)i', status: 'active',
      description: 'Registration with a mobile phone number, identity verification, sign-in and account settings.',
      categories: ['phone-number', 'identity-verification', 'credentials', 'session', 'contact-channel'],
      legalBases: ['consent', 'legal-obligation', 'contract-necessity'], standingBasis: null, requires: null, grantedAtRegistration: true,
      why: 'the law requires a mobile phone number to create an account, and we verify it is yours before serving you (policy 2.4.1(1)i)',
    },
    {
      id: 'profile', title: 'Optional profile', kind: 'additional', policyClause: '2.4.1(1)ii', status: 'active',
      description: 'Profile picture, account name, nickname and login password you choose to add.',
      categories: ['profile', 'credentials'],
      legalBases: ['consent'], standingBasis: null, requires: null, grantedAtRegistration: false,
      why: 'optional profile information improves your experience; you can use every basic service without it (policy 2.4.1(1)ii)',
    },
    {
      id: 'personalization', title: 'Personalised service information', kind: 'additional', policyClause: '2.4.1(2)', status: 'active',
      description: 'Browsing, search and usage logs used to show service information that fits your needs.',
      categories: ['activity-log'],
      legalBases: ['consent'], standingBasis: null, requires: null, grantedAtRegistration: false,
      why: 'your browsing, search and usage logs let us show service information that fits your needs (policy 2.4.1(2))',
    },
    {
      id: 'security', title: 'Security of your account and transactions', kind: 'basic', policyClause: '2.4.1(3)', status: 'active',
      description: 'Device information used to judge account and transaction risk and to prevent security incidents.',
      categories: ['device-info', 'session', 'identity-verification', 'phone-number', 'transaction-record'],
      legalBases: ['service-security', 'legal-obligation'],
      standingBasis: { legalBasis: 'service-security', evidenceRef: 'policy 2.4.1(3): device and account risk control' },
      requires: null, grantedAtRegistration: false,
      why: 'device information lets us judge account and transaction risk and prevent fraud and intrusions (policy 2.4.1(3))',
    },
    {
      id: 'notifications', title: 'Notices we owe you', kind: 'basic', policyClause: '5.4.2', status: 'active',
      description: 'Reaching you about security incidents, policy changes and service shutdowns.',
      categories: ['contact-channel', 'phone-number', 'notification-record'],
      legalBases: ['consent', 'legal-obligation'], standingBasis: null, requires: null, grantedAtRegistration: true,
      why: 'we must be able to tell you about security incidents (5.4.2), policy changes (VI) and service shutdowns (2.4.2(5))',
    },
    {
      id: 'sharing', title: 'Sharing with a third party', kind: 'additional', policyClause: '3.1.2', status: 'active',
      description: 'Providing your personal information to a named recipient for a specific business scenario.',
      categories: EXTERNAL_CATEGORIES,
      legalBases: ['consent', ...SHARING_EXCEPTIONS], standingBasis: null, requires: 'recipient', grantedAtRegistration: false,
      why: 'a specific business scenario needs your information at that recipient (policy 3.1.2)',
    },
    {
      id: 'public-disclosure', title: 'Public disclosure', kind: 'additional', policyClause: '3.3.1', status: 'active',
      description: 'Making your personal information public, only with your express consent or active choice.',
      categories: EXTERNAL_CATEGORIES,
      legalBases: ['consent', ...SHARING_EXCEPTIONS], standingBasis: null, requires: 'disclosure', grantedAtRegistration: false,
      why: 'you chose to make this information public (policy 3.3.1)',
    },
    {
      id: 'cross-border', title: 'Storage or transfer outside the home region', kind: 'additional', policyClause: '5.3.2', status: 'active',
      description: 'Storing or transferring your personal information outside the People\'s Republic of China.',
      categories: EXTERNAL_CATEGORIES,
      legalBases: ['consent', 'legal-obligation', 'other-law', 'contract-necessity'], standingBasis: null, requires: 'country', grantedAtRegistration: false,
      why: 'a service you use needs your information in another country or region (policy 5.3.2, 5.3.3)',
    },
  ],
  functions: [
    {
      id: 'registration', title: 'Registration', kind: 'basic', purposes: ['account'], status: 'active',
      categories: ['phone-number', 'identity-verification'],
      why: 'an account is created with your mobile phone number, verified by a one-time code',
    },
    {
      id: 'sign-in', title: 'Sign-in', kind: 'basic', purposes: ['account', 'security'], status: 'active',
      categories: ['phone-number', 'credentials', 'identity-verification', 'session', 'device-info'],
      why: 'signing you in needs your phone number, your password or a one-time code, a session and your device signals',
    },
    {
      id: 'account-settings', title: 'Account settings', kind: 'basic', purposes: ['account'], status: 'active',
      categories: ['phone-number', 'credentials', 'session', 'contact-channel'],
      why: 'to query, correct and supplement your account information (policy 4.1.2)',
    },
    {
      id: 'risk-control', title: 'Account and transaction risk control', kind: 'basic', purposes: ['security'], status: 'active',
      categories: ['device-info', 'session', 'identity-verification', 'phone-number', 'transaction-record'],
      why: 'device information lets us detect risky sign-ins and transactions',
    },
    {
      id: 'notifications', title: 'Notices', kind: 'basic', purposes: ['notifications'], status: 'active',
      categories: ['contact-channel', 'phone-number', 'notification-record'],
      why: 'notices reach you on the contact channels you gave us',
    },
    {
      id: 'profile', title: 'Optional profile', kind: 'additional', purposes: ['account', 'profile'], status: 'active',
      categories: ['profile', 'credentials'],
      why: 'your profile picture, account name, nickname and login password are kept only if you add them',
    },
    {
      id: 'personalization', title: 'Personalised service information', kind: 'additional', purposes: ['personalization'], status: 'active',
      categories: ['activity-log'],
      why: 'we use your browsing, search and usage logs to show information that fits you',
    },
    {
      id: 'sharing', title: 'Sharing with third parties', kind: 'additional', purposes: ['sharing'], status: 'active',
      categories: EXTERNAL_CATEGORIES,
      why: 'a recipient you agreed to receives the information a business scenario needs',
    },
    {
      id: 'public-disclosure', title: 'Public disclosure', kind: 'additional', purposes: ['public-disclosure'], status: 'active',
      categories: EXTERNAL_CATEGORIES,
      why: 'information you chose to make public is published',
    },
    {
      id: 'cross-border', title: 'Cross-border transfer', kind: 'additional', purposes: ['cross-border'], status: 'active',
      categories: EXTERNAL_CATEGORIES,
      why: 'a service you use stores or processes your information outside the home region',
    },
  ],
};

/** One reason a catalogue is invalid, with the clause it would break. */
export interface CatalogueProblem {
  path: string;
  message: string;
  clause: string;
}

/**
 * Checks the catalogue's invariants; an edit that breaks one is refused (409 with the clause):
 * - a basic function needs only basic purposes, so refusing an additional purpose can never block a
 *   basic function (2.1.2);
 * - a function's categories lie within its purposes' categories, and it needs at least one purpose (2.1);
 * - a purpose admits at least one basis; its standing basis is one it admits (2.4.2(4));
 * - additional purposes and purposes granted at registration are consent-based (2.1.2, 2.1.1);
 * - a purpose's policy clause, if any, names a clause of the general policy.
 */
export function catalogueProblems(catalogue: Catalogue): CatalogueProblem[] {
  const problems: CatalogueProblem[] = [];
  const purposes = new Map(catalogue.purposes.map((p) => [p.id, p]));
  for (const p of catalogue.purposes) {
    const at = `/purposes/${p.id}`;
    if (!p.categories.length) problems.push({ path: at, message: 'declares no data category', clause: '2.4.2(2)' });
    if (!p.legalBases.length) problems.push({ path: at, message: 'admits no legal basis', clause: '2.4.2(4)' });
    if (p.standingBasis && !p.legalBases.includes(p.standingBasis.legalBasis)) {
      problems.push({ path: at, message: `its standing basis ${p.standingBasis.legalBasis} is not among the bases it admits`, clause: '2.4.2(4)' });
    }
    if (p.kind === 'additional' && !p.legalBases.includes('consent')) {
      problems.push({ path: at, message: 'is additional, so it must admit consent (subjects agree to it separately)', clause: '2.1.2' });
    }
    if (p.grantedAtRegistration && (p.kind !== 'basic' || !p.legalBases.includes('consent'))) {
      problems.push({ path: at, message: 'only a consent-based basic purpose can be granted by acknowledging the policy at registration', clause: '2.1.1' });
    }
    if (p.policyClause !== null && !isClauseId(p.policyClause)) {
      problems.push({ path: at, message: `policy clause ${p.policyClause} is not a clause of the general policy`, clause: '1.1' });
    }
  }
  for (const f of catalogue.functions) {
    const at = `/functions/${f.id}`;
    if (!f.purposes.length) problems.push({ path: at, message: 'needs no purpose', clause: '2.1' });
    const own = f.purposes.map((id) => purposes.get(id));
    f.purposes.forEach((id, i) => {
      const p = own[i];
      if (!p) problems.push({ path: at, message: `needs unknown purpose ${id}`, clause: '2.1' });
      else if (f.status === 'active' && p.status !== 'active') problems.push({ path: at, message: `needs retired purpose ${id}`, clause: '2.1' });
      else if (f.kind === 'basic' && p.kind !== 'basic') {
        problems.push({ path: at, message: `is basic but needs additional purpose ${id}: refusing it would block a basic function`, clause: '2.1.2' });
      }
    });
    const allowed = new Set(own.flatMap((p) => p?.categories ?? []));
    const outside = f.categories.filter((c) => !allowed.has(c));
    if (outside.length) problems.push({ path: at, message: `needs categories outside its purposes: ${outside.join(', ')}`, clause: '2.4.2(2)' });
    if (!f.categories.length) problems.push({ path: at, message: 'needs no data category', clause: '2.1' });
  }
  return problems;
}

/** Titles of data categories, for messages a subject reads. */
export function categoryTitles(categories: readonly DataCategory[]): string {
  return categories.map((c) => DATA_CATEGORIES[c].title.toLowerCase()).join(', ');
}

/**
 * Whether consent to `purpose` ends only with the account (policy 2.1.1, 4.2; PIPL art. 13(2), 15): a
 * basic purpose granted by registering that also rests on the agreement with the subject
 * (`contract-necessity`), such as `account`. A withdrawal of it on its own is refused (409
 * PIPP_CLOSE_ACCOUNT_INSTEAD, naming the erasure request that ends it): accepted, it told the subject
 * sign-in had stopped while identity, rightly, went on serving the account. Pure.
 */
export function endsWithAccount(purpose: Pick<Purpose, 'kind' | 'grantedAtRegistration' | 'legalBases'>): boolean {
  return purpose.kind === 'basic' && purpose.grantedAtRegistration && purpose.legalBases.includes('contract-necessity');
}
