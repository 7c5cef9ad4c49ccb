/**
 * Process metrics: plain counters and gauges, exposed in Prometheus text format on /metrics.
 */

/** How an authentication ended: an OAuth discovery request is neither a success nor a failure. */
export type AuthResult = 'ok' | 'failed' | 'discovery';

/** Counters and gauges pgward keeps. */
export class Metrics {
  connectionsAccepted = 0;
  connectionsActive = 0;
  connectionsRefused = 0;
  sessionsActive = 0;
  /** Authentication outcomes by method and result. */
  readonly #auth = new Map<string, { method: string; result: AuthResult; count: number }>();
  upstreamFailures = 0;
  cancelRequests = 0;
  protocolViolations = 0;
  /** Failed logins whose answer was delayed (repeated failures for one address and user). */
  authFailuresDelayed = 0;
  /** Reads the number of connections still authenticating (set by the owner of the gate). */
  pendingAuth: () => number = () => 0;
  /** Last configuration reload: time and whether it failed. */
  lastReload: { at: Date; ok: boolean; error?: string } | null = null;

  /** Counts an authentication outcome for a method. */
  countAuth(method: string, result: AuthResult): void {
    const key = `${method} ${result}`;
    const entry = this.#auth.get(key);
    if (entry) entry.count++;
    else this.#auth.set(key, { method, result, count: 1 });
  }

  /** How many authentications of `method` ended with `result`. */
  authCount(method: string, result: AuthResult): number {
    return this.#auth.get(`${method} ${result}`)?.count ?? 0;
  }

  /** Prometheus text exposition. */
  render(): string {
    const lines = [
      '# TYPE pgward_connections_accepted_total counter',
      `pgward_connections_accepted_total ${this.connectionsAccepted}`,
      '# TYPE pgward_connections_refused_total counter',
      `pgward_connections_refused_total ${this.connectionsRefused}`,
      '# TYPE pgward_connections_active gauge',
      `pgward_connections_active ${this.connectionsActive}`,
      '# TYPE pgward_sessions_active gauge',
      `pgward_sessions_active ${this.sessionsActive}`,
      '# TYPE pgward_auth_total counter',
      ...[...this.#auth.values()].map(
        ({ method, result, count }) => `pgward_auth_total{method="${method}",result="${result}"} ${count}`,
      ),
      '# TYPE pgward_upstream_failures_total counter',
      `pgward_upstream_failures_total ${this.upstreamFailures}`,
      '# TYPE pgward_cancel_requests_total counter',
      `pgward_cancel_requests_total ${this.cancelRequests}`,
      '# TYPE pgward_protocol_violations_total counter',
      `pgward_protocol_violations_total ${this.protocolViolations}`,
      '# TYPE pgward_auth_failures_delayed_total counter',
      `pgward_auth_failures_delayed_total ${this.authFailuresDelayed}`,
      '# TYPE pgward_connections_authenticating gauge',
      `pgward_connections_authenticating ${this.pendingAuth()}`,
      '# TYPE pgward_config_last_reload_ok gauge',
      `pgward_config_last_reload_ok ${this.lastReload === null || this.lastReload.ok ? 1 : 0}`,
    ];
    return `${lines.join('\n')}\n`;
  }
}
