//! OpenTelemetry trace export (Cargo feature `otel`, off by default): the spans safehire's own
//! code opens — above all `call`, with its request id, method and caller organisation — go to
//! an OTLP/gRPC collector (`[telemetry] otlp_endpoint`), besides the log lines. What the logs may
//! not carry, the spans may not either: never an identity.
//!
//! Only spans and events of safehire's own code are exported, never those of the libraries
//! under it (hyper, h2, tonic, rustls), which could describe a request in their own words, and
//! which would otherwise report on the exporter's own calls to the collector. `RUST_LOG` filters
//! the export as it filters the logs.
//!
//! Without the feature this module only hands back "no export", and `Config::validate` refuses
//! a configured endpoint, so that a setting never silently does nothing.

use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

use crate::config::TelemetryConfig;

#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint: cannot start the OpenTelemetry export: {0}")]
pub struct TelemetryError(String);

/// The running export, if any. [`TraceExport::shutdown`] flushes the spans still buffered; call
/// it when the server has stopped.
#[derive(Debug)]
#[must_use = "shut the export down to flush the buffered spans"]
pub struct TraceExport {
    #[cfg(feature = "otel")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// The layer that exports spans (`None` when `otlp_endpoint` is empty, or in a build without
/// the feature) and the handle that flushes them at the end. Call it inside the Tokio runtime:
/// the gRPC client runs on it.
pub fn start<S>(
    config: &TelemetryConfig,
) -> Result<(Option<impl Layer<S> + use<S>>, TraceExport), TelemetryError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    #[cfg(feature = "otel")]
    {
        otel::start(config)
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = config;
        Ok((None::<tracing_subscriber::layer::Identity>, TraceExport {}))
    }
}

/// Makes `span` a child of the caller's trace when the request carries a W3C `traceparent`
/// header, so that an HR system's own trace shows the safehire call inside it. The header holds
/// only trace and span ids. Does nothing without the export.
pub fn continue_trace(span: &tracing::Span, headers: &tonic::codegen::http::HeaderMap) {
    #[cfg(feature = "otel")]
    if headers.contains_key("traceparent") {
        otel::continue_trace(span, headers);
    }
    #[cfg(not(feature = "otel"))]
    let _ = (span, headers);
}

impl TraceExport {
    /// Whether spans are being exported.
    pub fn is_active(&self) -> bool {
        #[cfg(feature = "otel")]
        {
            self.provider.is_some()
        }
        #[cfg(not(feature = "otel"))]
        {
            false
        }
    }

    /// Sends the spans still buffered and stops the export (for at most a few seconds: a
    /// collector that is down must not hold up the server's exit).
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(provider) = self.provider {
            // The SDK's shutdown blocks until its export thread is done, and that thread's
            // gRPC calls need this runtime: wait for it off the runtime's own threads.
            match tokio::task::spawn_blocking(move || provider.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "flushing the trace export failed"),
                Err(e) => tracing::warn!(error = %e, "flushing the trace export failed"),
            }
        }
    }
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithTonicConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing::Subscriber;
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::Layer;
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::registry::LookupSpan;

    use super::{TelemetryError, TraceExport};
    use crate::config::TelemetryConfig;

    /// Reads `traceparent`/`tracestate` out of gRPC request headers.
    struct Headers<'a>(&'a tonic::codegen::http::HeaderMap);

    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0
                .keys()
                .map(tonic::codegen::http::HeaderName::as_str)
                .collect()
        }
    }

    pub(super) fn continue_trace(span: &tracing::Span, headers: &tonic::codegen::http::HeaderMap) {
        use opentelemetry::propagation::TextMapPropagator as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new()
            .extract(&Headers(headers));
        // Refused only when no export layer is installed: then there is no trace to join.
        let _ = span.set_parent(parent);
    }

    pub(super) fn start<S>(
        config: &TelemetryConfig,
    ) -> Result<(Option<impl Layer<S> + use<S>>, TraceExport), TelemetryError>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        let Some(endpoint) = config.otlp_endpoint() else {
            return Ok((None, TraceExport { provider: None }));
        };
        let mut exporter = SpanExporter::builder().with_tonic().with_endpoint(endpoint);
        if endpoint.starts_with("https://") {
            // The collector's certificate is checked against the system's trust store.
            exporter = exporter
                .with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
        }
        let exporter = exporter
            .build()
            .map_err(|e| TelemetryError(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .with_batch_exporter(exporter)
            .build();
        let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
        let layer = tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(Targets::new().with_target(env!("CARGO_CRATE_NAME"), LevelFilter::TRACE));
        Ok((
            Some(layer),
            TraceExport {
                provider: Some(provider),
            },
        ))
    }
}
