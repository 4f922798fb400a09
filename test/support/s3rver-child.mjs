// Runs s3rver in its own process (see test/support/s3rver.ts for why). Usage:
//   node --openssl-legacy-provider test/support/s3rver-child.mjs DIR
// Prints one JSON line {"port": N} once listening on 127.0.0.1, and stops on SIGTERM or
// when its parent goes away (stdin closes), so a crashed test run leaves nothing behind.
import S3rver from 's3rver';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: s3rver-child.mjs DIR');
  process.exit(2);
}
const server = new S3rver({ address: '127.0.0.1', port: 0, directory: dir, silent: true });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  await server.close().catch(() => {});
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
