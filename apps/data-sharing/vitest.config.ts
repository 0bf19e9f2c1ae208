import { projectConfig } from '../../vitest.shared.js';

// Integration tests wait on a real broker and database shared with other test runs on 2 cores: the
// erasure and sweep flows read several replies, each of which can take a while under load.
export default projectConfig('data-sharing', { testTimeout: 240_000 });
