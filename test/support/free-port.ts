// A TCP port for a test's server or forward, on the loopback address only.
import { createServer } from "node:net";

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel's choice for port 0). */
export function freeTcpPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}
