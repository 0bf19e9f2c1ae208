import { projectConfig } from '../../vitest.shared.js';

// Files run one after another: the fan-out test loads the shared FerretDB heavily, and on the 2-core
// machine the other files' readiness and timing checks would otherwise fail under its load.
export default projectConfig('incident', { fileParallelism: false });
