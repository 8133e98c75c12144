// Package faulttest holds end-to-end fault-injection and abuse tests of
// Gatehouse: real gateways (gateway.New on 127.0.0.1) in front of real
// upstreams and identity providers that misbehave on purpose, a real
// redis-server, a state file on a tmpfs that fills up, and the real binary
// for reloads and SIGTERM under load. Each test asserts the behaviour
// documented in docs/operations.md ("Failure behaviour") and that the
// gateway recovers by itself, without a restart.
//
// Faults already covered next to the code they exercise are not repeated
// here:
//
//   - Redis down and back under rate_limit in each on_store_error mode:
//     internal/policy/ratelimit TestRedisDown; the store itself:
//     internal/store TestRedisOutage.
//   - JWKS fetch failures, rotation and the first fetch awaited:
//     internal/authn/jwt TestKeyRotation, TestDownAtLoad,
//     TestFirstFetchAwaited.
//   - Introspection endpoint 500, garbage, huge, redirect, hanging, closed:
//     internal/authn/introspect TestOutage.
//   - Claims with CR/LF and spoofed identity headers through the gateway:
//     internal/policy/identity TestThroughGateway.
//   - A failed reload keeping the old config, reloads under load, graceful
//     shutdown with one request in flight: internal/gateway TestReload,
//     TestGracefulShutdown; file-watch reload and SIGTERM of the binary:
//     cmd/gatehouse TestServeReloadsAndDrains.
//
// The package has no non-test code.
package faulttest
