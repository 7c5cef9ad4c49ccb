/**
 * A real identity provider for tests: `oidc-provider` in-process on a loopback port. It serves
 * discovery, JWKS, the client_credentials grant (JWT access tokens for a resource, or opaque ones) and
 * RFC 7662 introspection. Each client id is a principal (`sub` of its tokens), with extra claims set
 * per client. Keys can be rotated (a new provider with the new key first takes over the same
 * issuer) and the IdP can be taken down and brought back.
 */

import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';
import type { Test } from 'tap';

/** The audience (resource) JWT access tokens are issued for. */
export const RESOURCE = 'urn:pgward:db';

/** A client of the IdP, and the claims its tokens carry besides `sub`. */
export interface IdpClient {
  id: string;
  secret: string;
  claims?: Record<string, unknown>;
  scope?: string;
}

/** A running IdP. */
export interface TestIdp {
  issuer: string;
  discoveryUrl: string;
  jwksUrl: string;
  introspectionUrl: string;
  /** The client pgward introspects with. */
  introspector: { id: string; secret: string };
  /** A JWT access token for a client (client_credentials, resource RESOURCE). */
  jwt(client: string, scope?: string): Promise<string>;
  /** An opaque access token for a client (no resource). */
  opaque(client: string, scope?: string): Promise<string>;
  /** Signs with a new key from now on; the old key stays published (a rotation). */
  rotate(options?: { dropOld?: boolean }): Promise<void>;
  /** The IdP stops answering (connections are destroyed) until `up()`. */
  down(): void;
  up(): void;
  /** Requests served, per path (to see what pgward fetched). */
  hits: Map<string, number>;
  /** The current signing key's public half, as PEM (for a `pem` validator). */
  publicKeyPem(): string;
}

function rsaJwk(kid: string): { kid: string; key: KeyObject; jwk: Record<string, unknown> } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    kid,
    key: privateKey,
    jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' },
  };
}

/** Starts the IdP with these clients; stopped at teardown. */
export async function startTestIdp(t: Test, clients: IdpClient[]): Promise<TestIdp> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = `http://127.0.0.1:${port}`;
  const introspector = { id: 'pgward-introspector', secret: 'introspector-secret' };
  const byId = new Map(clients.map((client) => [client.id, client]));
  let keys = [rsaJwk('key-1')];
  let generation = 1;
  let isDown = false;
  const hits = new Map<string, number>();

  const build = () =>
    new Provider(issuer, {
      clients: [
        ...clients.map((client) => ({
          client_id: client.id,
          client_secret: client.secret,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
          scope: client.scope ?? 'db',
        })),
        {
          client_id: introspector.id,
          client_secret: introspector.secret,
          grant_types: [],
          redirect_uris: [],
          response_types: [],
        },
      ],
      jwks: { keys: keys.map((k) => k.jwk) } as never,
      scopes: ['openid', 'db', 'admin'],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true, allowedPolicy: async () => true },
        resourceIndicators: {
          enabled: true,
          defaultResource: async () => undefined as unknown as string,
          useGrantedResource: async () => true,
          getResourceServerInfo: async () => ({
            scope: 'db admin',
            audience: RESOURCE,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      extraTokenClaims: async (_ctx, token) => {
        const clientId = (token as { clientId?: string }).clientId;
        return clientId ? (byId.get(clientId)?.claims ?? {}) : {};
      },
    });
  let provider = build();
  server.on('request', (request, response) => {
    const path = new URL(request.url ?? '/', issuer).pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    if (isDown) {
      request.socket.destroy();
      return;
    }
    provider.callback()(request, response);
  });
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );

  const token = async (clientId: string, scope: string, resource: boolean): Promise<string> => {
    const client = byId.get(clientId);
    if (!client) throw new Error(`no client ${clientId}`);
    const body = new URLSearchParams({ grant_type: 'client_credentials', scope });
    if (resource) body.set('resource', RESOURCE);
    const response = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body,
    });
    const answer = (await response.json()) as {
      access_token?: string;
      error?: string;
      error_description?: string;
    };
    if (!answer.access_token) throw new Error(`token: ${answer.error}: ${answer.error_description}`);
    return answer.access_token;
  };

  return {
    issuer,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksUrl: `${issuer}/jwks`,
    introspectionUrl: `${issuer}/token/introspection`,
    introspector,
    jwt: (client, scope = 'db') => token(client, scope, true),
    opaque: (client, scope = 'db') => token(client, scope, false),
    async rotate(options = {}) {
      generation++;
      const fresh = rsaJwk(`key-${generation}`);
      keys = options.dropOld ? [fresh] : [fresh, ...keys];
      provider = build();
    },
    down() {
      isDown = true;
    },
    up() {
      isDown = false;
    },
    hits,
    publicKeyPem: () =>
      createPublicKey(keys[0]?.key ?? '')
        .export({ type: 'spki', format: 'pem' })
        .toString(),
  };
}
