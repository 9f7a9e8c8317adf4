package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
)

// The gRPC handlers, called directly: what the engine gets back for each request.

const urn = "urn:pulumi:dev::p::command:local:Command::c"

func marshal(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := plugin.MarshalProperties(m, outOpts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unmarshal(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := plugin.UnmarshalProperties(s, inOpts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCheckReturnsTheInputsAsGivenWithNoDefault(t *testing.T) {
	news := resource.PropertyMap{
		"create":      resource.NewProperty("echo"),
		"environment": resource.NewProperty(resource.PropertyMap{"K": resource.MakeSecret(resource.NewProperty("v"))}),
	}
	resp, err := newProvider(nil).Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, news)})
	if err != nil || len(resp.Failures) != 0 {
		t.Fatalf("check: %v %v", err, resp.GetFailures())
	}
	if got := unmarshal(t, resp.Inputs); !got.DeepEquals(news) {
		t.Fatalf("check changed the inputs: %v", got)
	}
	bad := resource.PropertyMap{"logging": resource.NewProperty("loud")}
	resp, err = newProvider(nil).Check(context.Background(), &pulumirpc.CheckRequest{Urn: urn, News: marshal(t, bad)})
	if err != nil || len(resp.Failures) != 1 || resp.Failures[0].Property != "logging" {
		t.Fatalf("a bad logging value must be a check failure: %v %v", err, resp.GetFailures())
	}
}

func TestDiffResponseReplacesOnTriggersCreateBeforeDelete(t *testing.T) {
	olds := resource.PropertyMap{"triggers": resource.NewProperty([]resource.PropertyValue{resource.NewProperty("a")})}
	news := resource.PropertyMap{"triggers": resource.NewProperty([]resource.PropertyValue{resource.NewProperty("b")})}
	resp, err := newProvider(nil).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, OldInputs: marshal(t, olds), Olds: marshal(t, olds), News: marshal(t, news),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Changes != pulumirpc.DiffResponse_DIFF_SOME || !resp.HasDetailedDiff || resp.DeleteBeforeReplace {
		t.Fatalf("diff: %v", resp)
	}
	if strings.Join(resp.Replaces, ",") != "triggers" || resp.DetailedDiff["triggers[0]"].Kind != pulumirpc.PropertyDiff_UPDATE_REPLACE {
		t.Fatalf("diff: %v", resp)
	}
	resp, err = newProvider(nil).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, OldInputs: marshal(t, olds), Olds: marshal(t, olds), News: marshal(t, olds),
	})
	if err != nil || resp.Changes != pulumirpc.DiffResponse_DIFF_NONE || len(resp.DetailedDiff) != 0 {
		t.Fatalf("no change: %v %v", err, resp)
	}
}

func TestDiffFallsBackToTheStateWithoutOldInputs(t *testing.T) {
	state := resource.PropertyMap{"create": resource.NewProperty("c"), "stdout": resource.NewProperty("o")}
	news := resource.PropertyMap{"create": resource.NewProperty("c")}
	resp, err := newProvider(nil).Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Olds: marshal(t, state), News: marshal(t, news),
	})
	if err != nil || resp.Changes != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("stdout is not an input: %v %v", err, resp)
	}
}

func TestConfigureAnswersWhatTheContractSays(t *testing.T) {
	resp, err := newProvider(nil).Configure(context.Background(), &pulumirpc.ConfigureRequest{})
	if err != nil || !resp.AcceptSecrets || !resp.SupportsPreview || !resp.AcceptResources || !resp.AcceptOutputs {
		t.Fatalf("configure: %v %v", err, resp)
	}
}

func TestOtherTokensAreRejected(t *testing.T) {
	p := newProvider(nil)
	_, err := p.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: "urn:pulumi:dev::p::command:remote:Command::r", Properties: marshal(t, resource.PropertyMap{}),
	})
	if err == nil || !strings.Contains(err.Error(), "command:remote:Command is not served by this plugin") {
		t.Fatalf("remote: %v", err)
	}
	_, err = p.Invoke(context.Background(), &pulumirpc.InvokeRequest{Tok: "command:local:run"})
	if err == nil || !strings.Contains(err.Error(), "command:local:run is not served by this plugin") {
		t.Fatalf("invoke: %v", err)
	}
}

func TestPreviewCreateRunsNothing(t *testing.T) {
	news := resource.PropertyMap{"create": resource.NewProperty("exit 1")}
	resp, err := newProvider(nil).Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: urn, Properties: marshal(t, news), Preview: true,
	})
	if err != nil {
		t.Fatalf("a preview ran the failing command: %v", err)
	}
	got := unmarshal(t, resp.Properties)
	if !got["stdout"].IsComputed() || !got["stderr"].IsComputed() || !strings.HasPrefix(resp.Id, "c") || len(resp.Id) != 9 {
		t.Fatalf("preview: %v %q", got, resp.Id)
	}
}

func TestSchemaAndPluginInfoNameThisBuild(t *testing.T) {
	p := newProvider(nil)
	resp, err := p.GetSchema(context.Background(), &pulumirpc.GetSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal([]byte(resp.Schema), &schema); err != nil {
		t.Fatal(err)
	}
	if schema["version"] != version || !strings.Contains(schema["description"].(string), "not Pulumi's official binary") {
		t.Fatalf("schema: %v %v", schema["version"], schema["description"])
	}
	info, err := p.GetPluginInfo(context.Background(), &emptypb.Empty{})
	if err != nil || info.Version != version {
		t.Fatalf("plugin info: %v %v", err, info)
	}
}
