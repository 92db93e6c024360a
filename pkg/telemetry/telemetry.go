// Package telemetry builds OpenTelemetry trace and meter providers: metrics
// always reach a Prometheus registry, and both traces and metrics are exported
// over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// Providers holds one process's (or one server's) telemetry pipeline.
type Providers struct {
	Tracer     *sdktrace.TracerProvider
	Meter      *sdkmetric.MeterProvider
	Registry   *prometheus.Registry
	Propagator propagation.TextMapPropagator
	// OTLP is true when traces and metrics are exported over OTLP.
	OTLP bool
}

// New builds providers for serviceName. Each call gets its own Prometheus
// registry, so several servers can live in one process (as in tests).
func New(ctx context.Context, serviceName, version string) (*Providers, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(serviceName),
		semconv.ServiceVersion(version),
	))
	if err != nil {
		return nil, fmt.Errorf("building telemetry resource: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	promExp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("building prometheus exporter: %w", err)
	}
	meterOpts := []sdkmetric.Option{sdkmetric.WithResource(res), sdkmetric.WithReader(promExp)}
	traceOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	otlp := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	if otlp {
		te, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("building OTLP trace exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
		}
		traceOpts = append(traceOpts, sdktrace.WithBatcher(te))
		me, err := otlpmetricgrpc.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("building OTLP metric exporter (OTEL_EXPORTER_OTLP_ENDPOINT): %w", err)
		}
		meterOpts = append(meterOpts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(me)))
	}
	return &Providers{
		Tracer:     sdktrace.NewTracerProvider(traceOpts...),
		Meter:      sdkmetric.NewMeterProvider(meterOpts...),
		Registry:   reg,
		Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		OTLP:       otlp,
	}, nil
}

// Shutdown flushes and stops both providers.
func (p *Providers) Shutdown(ctx context.Context) error {
	return errors.Join(p.Tracer.Shutdown(ctx), p.Meter.Shutdown(ctx))
}
