/**
 * The client-facing TLS context: built from the configured certificate, key and CA files, and
 * rebuilt on reload so new handshakes use new material while established sessions keep theirs.
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { ListenTlsConfig } from '../config/pgward-config.ts';
import { tlsServerEndPoint } from './channel-binding.ts';

/**
 * Every CRL in a PEM file (one per CA: with a CRL configured, every certificate of the chain is
 * checked, as PostgreSQL's ssl_crl_file does). Node parses one CRL per buffer, so they are split.
 */
function readCrls(file: string): string[] {
  const blocks = readFileSync(file, 'utf8').match(/-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g);
  if (!blocks) throw new Error(`${file}: no "BEGIN X509 CRL" block`);
  return blocks;
}

/** Holds the current SecureContext for the listener. */
export class ServerTlsContext {
  #context: SecureContext;
  #channelBinding: Buffer | null;
  #config: ListenTlsConfig;

  constructor(config: ListenTlsConfig) {
    this.#config = config;
    [this.#context, this.#channelBinding] = ServerTlsContext.#build(config);
  }

  static #build(config: ListenTlsConfig): [SecureContext, Buffer | null] {
    const cert = readFileSync(config.certFile);
    const context = createSecureContext({
      cert,
      key: readFileSync(config.keyFile),
      ...(config.caFile === undefined ? {} : { ca: readFileSync(config.caFile) }),
      ...(config.crlFile === undefined ? {} : { crl: readCrls(config.crlFile) }),
      minVersion: 'TLSv1.2',
    });
    // The first certificate of the file is the one the handshake presents.
    return [context, tlsServerEndPoint(new X509Certificate(cert).raw)];
  }

  /**
   * The tls-server-end-point channel binding data of the certificate new handshakes present, or null
   * when its signature algorithm names no hash (then SCRAM-SHA-256-PLUS is not offered).
   */
  get channelBinding(): Buffer | null {
    return this.#channelBinding;
  }

  /** The context new handshakes use. */
  get current(): SecureContext {
    return this.#context;
  }

  /**
   * Whether handshakes ask for a client certificate: when a CA is configured, as PostgreSQL does with
   * ssl_ca_file. Never required at the handshake: rules decide (`cert`, `clientcert`), so a client
   * without one still reaches its rule and gets a PostgreSQL error, not a TLS alert.
   */
  get requestClientCertificate(): boolean {
    return this.#config.caFile !== undefined;
  }

  /** Whether direct TLS (no SSLRequest) is accepted. */
  get direct(): boolean {
    return this.#config.direct;
  }

  /** Re-reads the files; on error the old context stays and the error is thrown. */
  reload(config: ListenTlsConfig = this.#config): void {
    [this.#context, this.#channelBinding] = ServerTlsContext.#build(config);
    this.#config = config;
  }
}
