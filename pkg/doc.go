// Package pkg holds the code that orgsync's services share: JetStream streams and trace-carrying
// messaging (stream), OpenTelemetry setup (telemetry), structured logs (logging), the service
// lifecycle (server) and configuration from the environment (envconfig). These packages are meant
// for orgsync's own services, not for outside use; their APIs change with the services' needs.
package pkg
