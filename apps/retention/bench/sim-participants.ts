// Child process of the benchmark: the other participants (identity, consent, data-sharing, incident)
// simulated as one real process on the broker, replying `completed` to every erasure request.
import { SimulatedParticipants } from '../test/fixtures/simulated.js';

const prefix = process.env.KAFKA_TOPIC_PREFIX ?? '';
const sim = await SimulatedParticipants.start({ prefix, participants: ['identity', 'consent', 'data-sharing', 'incident'] });
process.send?.({ ready: true });
process.on('SIGTERM', () => { void sim.stop().then(() => process.exit(0)); });
