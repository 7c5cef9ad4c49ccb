/**
 * The client-facing TLS context: built from the configured certificate, key and CA files, and
 * rebuilt on reload so new handshakes use new material while established sessions keep theirs.
 */

import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ListenTlsConfig } from '../config/pgward-config.ts';

/** Holds the current SecureContext for the listener. */
export class ServerTlsContext {
  #context: SecureContext;
  #config: ListenTlsConfig;

  constructor(config: ListenTlsConfig) {
    this.#config = config;
    this.#context = ServerTlsContext.#build(config);
  }

  static #build(config: ListenTlsConfig): SecureContext {
    return createSecureContext({
      cert: readFileSync(config.certFile),
      key: readFileSync(config.keyFile),
      ...(config.caFile === undefined ? {} : { ca: readFileSync(config.caFile) }),
      minVersion: 'TLSv1.2',
    });
  }

  /** The context new handshakes use. */
  get current(): SecureContext {
    return this.#context;
  }

  /** Whether direct TLS (no SSLRequest) is accepted. */
  get direct(): boolean {
    return this.#config.direct;
  }

  /** Re-reads the files; on error the old context stays and the error is thrown. */
  reload(config: ListenTlsConfig = this.#config): void {
    this.#context = ServerTlsContext.#build(config);
    this.#config = config;
  }
}
