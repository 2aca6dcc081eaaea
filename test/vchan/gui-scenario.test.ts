// The way gui-agent and guid use shm/ and vchan/ together: a WINDOW_DUMP's
// refs travel over the vchan, the pixels stay in the granted pages.
import { once } from "node:events";

import { afterEach, beforeEach, describe, expect, it } from "vitest";

import { Framebuffer, MappedFramebuffer, MemfdGrantTable, type GrantTable } from "../../shm/index.ts";
import { connectVchanClient, createVchanServer, type Vchan } from "../../vchan/index.ts";
import { temporaryDirectory } from "../helpers/processes.ts";
import { runnableBackends } from "./helpers.ts";

const AGENT = 3;
const GUI = 0;

describe.each(runnableBackends)("framebuffer refs over a %s vchan", (backend) => {
  let dir: { dir: string; remove: () => void };
  const cleanups: Array<() => void> = [];
  beforeEach(() => {
    dir = temporaryDirectory();
  });
  afterEach(() => {
    for (const cleanup of cleanups.splice(0).reverse()) cleanup();
    dir.remove();
  });

  async function session(
    passTables: boolean,
  ): Promise<{ agentGrants: GrantTable; guiGrants: GrantTable; agent: Vchan; guid: Vchan }> {
    const agentGrants = new MemfdGrantTable({ domain: AGENT, socketDir: dir.dir });
    const guiGrants = new MemfdGrantTable({ domain: GUI, socketDir: dir.dir });
    cleanups.push(
      () => agentGrants.destroy(),
      () => guiGrants.destroy(),
    );
    agentGrants.offer(GUI);
    const extra = (table: GrantTable) => (passTables ? { grants: table } : {});
    const agent = createVchanServer({
      backend,
      domain: GUI,
      ownDomain: AGENT,
      port: 6000,
      socketDir: dir.dir,
      ...extra(agentGrants),
    });
    const guid = await connectVchanClient({
      backend,
      domain: AGENT,
      ownDomain: GUI,
      port: 6000,
      socketDir: dir.dir,
      ...extra(guiGrants),
    });
    cleanups.push(
      () => agent.close(),
      () => guid.close(),
    );
    await Promise.all([agent.whenConnected(), guiGrants.attach(AGENT)]);
    return { agentGrants, guiGrants, agent, guid };
  }

  it.each([false, true])(
    "maps the refs a vchan carried (the domain's table passed to the vchan: %s)",
    async (passTables) => {
      const { agentGrants, guiGrants, agent, guid } = await session(passTables);
      const framebuffer = new Framebuffer(agentGrants, GUI, 640, 480);
      framebuffer.pixels.fill(0x77);
      const refs = new Uint32Array(framebuffer.refs);
      expect(agent.send(new Uint8Array(refs.buffer))).toBe(true);
      await once(guid, "data");
      const received = new Uint32Array(refs.length);
      expect(guid.recv(new Uint8Array(received.buffer))).toBe(true);
      const mapped = new MappedFramebuffer(guiGrants, AGENT, 640, 480, [...received]);
      expect(mapped.pixels[640 * 480 * 4 - 1]).toBe(0x77);
      expect(mapped.contiguous).not.toBeNull();
      mapped.unmap();
      framebuffer.destroy();
    },
  );
});
