import { projectConfig } from '../vitest.shared.js';

/** Checks of the repository as a whole: deployment files, documents. */
export default projectConfig('repo', { include: ['**/*.test.ts'] });
