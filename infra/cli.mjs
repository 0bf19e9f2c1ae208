#!/usr/bin/env node
// pipp-infra: the local Kafka broker and FerretDB, for `make dev` and the tests.
//   node infra/cli.mjs build            fetch the Kafka jars and build FerretDB (cached)
//   node infra/cli.mjs up [profile]     start both (or reuse running ones) and wait until ready
//   node infra/cli.mjs down [profile]   stop both
//   node infra/cli.mjs wipe [profile]   stop both and delete their data
//   node infra/cli.mjs status [profile] pids, ports and log files
//   node infra/cli.mjs env [profile]    print MONGO_URL and KAFKA_BROKERS as shell exports
// profile: dev (default; Kafka 9092, MongoDB protocol 27017) or test (19092, 27018).
import { down, ensureFerret, ensureKafka, profileConfig, status, up, wipe } from './lib/index.mjs';

const [cmd = 'help', profile = 'dev'] = process.argv.slice(2);

async function main() {
  switch (cmd) {
    case 'build': {
      const [lib, bin] = await Promise.all([ensureKafka(), ensureFerret()]);
      console.log(`kafka jars: ${lib}\nferretdb:   ${bin}`);
      return;
    }
    case 'up': {
      const env = await up(profile);
      console.log(`ready (${profile}): MONGO_URL=${env.MONGO_URL} KAFKA_BROKERS=${env.KAFKA_BROKERS}`
        + (env.started.length ? ` (started ${env.started.join(', ')})` : ' (already running)'));
      return;
    }
    case 'down': {
      const stopped = await down(profile);
      console.log(stopped.length ? `stopped ${stopped.join(', ')} (${profile})` : `nothing was running (${profile})`);
      return;
    }
    case 'wipe':
      await wipe(profile);
      console.log(`stopped and deleted ${profileConfig(profile).stateDir}`);
      return;
    case 'status':
      for (const s of await status(profile)) {
        console.log(`${s.name.padEnd(9)} ${s.pid ? `pid ${s.pid}` : 'not running'}  port ${s.port} ${s.listening ? 'open' : 'closed'}  log ${s.log}`);
      }
      return;
    case 'env': {
      const cfg = profileConfig(profile);
      console.log(`export MONGO_URL=mongodb://127.0.0.1:${cfg.mongoPort}\nexport KAFKA_BROKERS=127.0.0.1:${cfg.kafkaPort}`);
      return;
    }
    default:
      console.log('usage: node infra/cli.mjs build|up|down|wipe|status|env [dev|test]');
      process.exitCode = cmd === 'help' ? 0 : 2;
  }
}

main().catch((err) => {
  console.error(`[infra] ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
