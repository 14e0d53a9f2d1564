// Package otlp exports a span recorded by package telemetry over
// OTLP/HTTP, with OpenTelemetry's SDK and exporters. Only the nucleus-otlp
// program links it (see package telemetry).
package otlp

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlplog/otlploghttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otellog "go.opentelemetry.io/otel/log"
	sdklog "go.opentelemetry.io/otel/sdk/log"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/nucleus-run/nucleus/telemetry"
)

// Export sends span (and its events as log records) to endpoint, a base
// URL. Each signal gets one attempt within telemetry.ExportTimeout; ctx
// bounds both.
func Export(ctx context.Context, endpoint string, span telemetry.Span) error {
	u, err := telemetry.ParseEndpoint(endpoint)
	if err != nil {
		return err
	}
	var errs []error
	var mu sync.Mutex
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}))
	base := strings.TrimRight(u.Path, "/")
	topts := []otlptracehttp.Option{
		otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(base + "/v1/traces"),
		otlptracehttp.WithTimeout(telemetry.ExportTimeout), otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}),
	}
	lopts := []otlploghttp.Option{
		otlploghttp.WithEndpoint(u.Host), otlploghttp.WithURLPath(base + "/v1/logs"),
		otlploghttp.WithTimeout(telemetry.ExportTimeout), otlploghttp.WithRetry(otlploghttp.RetryConfig{Enabled: false}),
	}
	if u.Scheme == "http" {
		topts = append(topts, otlptracehttp.WithInsecure())
		lopts = append(lopts, otlploghttp.WithInsecure())
	}
	te, err := otlptracehttp.New(ctx, topts...)
	if err != nil {
		return err
	}
	le, err := otlploghttp.New(ctx, lopts...)
	if err != nil {
		return err
	}
	res := resource.NewSchemaless(semconv.ServiceName("nucleus"), semconv.ServiceVersion(span.Version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSyncer(te))
	lp := sdklog.NewLoggerProvider(sdklog.WithResource(res), sdklog.WithProcessor(sdklog.NewSimpleProcessor(le)))

	var attrs []attribute.KeyValue
	for k, v := range span.Attributes {
		attrs = append(attrs, value(k, v))
	}
	sctx, sp := tp.Tracer("nucleus").Start(ctx, span.Name, trace.WithTimestamp(span.Start), trace.WithAttributes(attrs...))
	logger := lp.Logger("nucleus")
	id := fmt.Sprint(span.Attributes["container.id"])
	for _, e := range span.Events {
		eattrs := []attribute.KeyValue{attribute.String("container.id", id)}
		for k, v := range e.Fields {
			eattrs = append(eattrs, value("nucleus."+k, v))
		}
		sp.AddEvent(e.Name, trace.WithTimestamp(e.Time), trace.WithAttributes(eattrs...))
		var r otellog.Record
		r.SetTimestamp(e.Time)
		r.SetSeverity(otellog.SeverityInfo)
		r.SetSeverityText("INFO")
		r.SetEventName(e.Name)
		r.SetBody(attribute.StringValue(e.Line))
		r.AddAttributes(attribute.String("container.id", id), attribute.String("nucleus.event", e.Name))
		logger.Emit(sctx, r)
	}
	if span.Error != "" {
		sp.SetStatus(codes.Error, span.Error)
	}
	sp.End(trace.WithTimestamp(span.End))
	// Both shut down at once, within ctx.
	var wg sync.WaitGroup
	for _, shutdown := range []func(context.Context) error{tp.Shutdown, lp.Shutdown} {
		wg.Go(func() {
			if err := shutdown(ctx); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func value(k string, v any) attribute.KeyValue {
	switch x := v.(type) {
	case string:
		return attribute.String(k, x)
	case bool:
		return attribute.Bool(k, x)
	case float64:
		if x == float64(int64(x)) {
			return attribute.Int64(k, int64(x))
		}
		return attribute.Float64(k, x)
	default:
		return attribute.String(k, fmt.Sprint(v))
	}
}
