package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pprovider "github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// commandType is the one resource this plugin serves.
const commandType = "command:local:Command"

//go:embed schema.json
var schemaJSON []byte

// Receiving: keep every secret, unknown, resource reference and output value as it came.
var inOpts = plugin.MarshalOptions{
	Label: "command", KeepUnknowns: true, KeepSecrets: true, KeepResources: true, KeepOutputValues: true,
}

// Sending: unknowns only survive a preview; secrets and references always do.
var outOpts = plugin.MarshalOptions{
	Label: "command", KeepUnknowns: true, KeepSecrets: true, KeepResources: true, SkipNulls: true,
}

// commandProvider implements the ResourceProvider gRPC service for command:local:Command.
type commandProvider struct {
	pulumirpc.UnimplementedResourceProviderServer

	host *pprovider.HostClient // nil when attached without an engine: no status lines then
	// cancelled ends every run in flight (and refuses new ones) once the engine calls Cancel.
	cancelled context.Context
	cancel    context.CancelCauseFunc
	grace     time.Duration
	drain     time.Duration
}

func newProvider(host *pprovider.HostClient) *commandProvider {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &commandProvider{host: host, cancelled: ctx, cancel: cancel, grace: 3 * time.Second, drain: 3 * time.Second}
}

// rejectType is the clear error for every token but command:local:Command.
func rejectType(token string) error {
	return status.Errorf(codes.InvalidArgument,
		"%s is not served by this plugin: the cilium-datapath-lab project's own pulumi-resource-command "+
			"implements only %s (pulumi-command 1.2.1's contract); remote commands and the command:local:run "+
			"invoke need Pulumi's official plugin", token, commandType)
}

func checkType(urn, typ string) error {
	if typ == "" {
		typ = string(resource.URN(urn).Type())
	}
	if typ != commandType {
		return rejectType(typ)
	}
	return nil
}

func (p *commandProvider) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version}, nil
}

func (p *commandProvider) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		return nil, err
	}
	schema["version"] = version
	schema["description"] = fmt.Sprintf("%s. %s", identity(), schema["description"])
	out, err := json.Marshal(schema)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.GetSchemaResponse{Schema: string(out)}, nil
}

// CheckConfig and DiffConfig: the provider has no configuration, so any is accepted and none matters.
func (p *commandProvider) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (p *commandProvider) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE, HasDetailedDiff: true}, nil
}

func (p *commandProvider) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{
		AcceptSecrets: true, SupportsPreview: true, AcceptResources: true, AcceptOutputs: true,
	}, nil
}

func (p *commandProvider) Invoke(_ context.Context, req *pulumirpc.InvokeRequest) (*pulumirpc.InvokeResponse, error) {
	return nil, rejectType(req.GetTok())
}

func (p *commandProvider) Call(_ context.Context, req *pulumirpc.CallRequest) (*pulumirpc.CallResponse, error) {
	return nil, rejectType(req.GetTok())
}

func (p *commandProvider) Construct(_ context.Context, req *pulumirpc.ConstructRequest) (*pulumirpc.ConstructResponse, error) {
	return nil, rejectType(req.GetType())
}

// Check validates types and returns the inputs exactly as given: injecting a default (upstream once
// wrote addPreviousOutputInEnv: true) would show a diff on every stack the official plugin wrote.
func (p *commandProvider) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	_, failures := parseInputs(news, true)
	inputs, err := plugin.MarshalProperties(normalizeMap(news), outOpts)
	if err != nil {
		return nil, err
	}
	resp := &pulumirpc.CheckResponse{Inputs: inputs}
	for _, f := range failures {
		resp.Failures = append(resp.Failures, &pulumirpc.CheckFailure{Property: f.Property, Reason: f.Reason})
	}
	return resp, nil
}

// Diff compares the inputs last applied (the engine's old inputs) with the new ones.
func (p *commandProvider) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	var olds resource.PropertyMap
	if req.GetOldInputs() != nil {
		olds, err = plugin.UnmarshalProperties(req.GetOldInputs(), inOpts)
	} else {
		var state resource.PropertyMap
		state, err = plugin.UnmarshalProperties(req.GetOlds(), inOpts)
		olds = inputsOf(state)
	}
	if err != nil {
		return nil, err
	}
	d := diffInputs(normalizeMap(olds), normalizeMap(news))
	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		Diffs:           d.Changed,
		Replaces:        d.Replaces,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	if len(d.Changed) > 0 {
		resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	}
	for path, pd := range d.Detailed {
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{Kind: rpcKind(pd.Kind), InputDiff: pd.InputDiff}
	}
	return resp, nil
}

func rpcKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	default:
		return pulumirpc.PropertyDiff_UPDATE
	}
}

// Create runs `create` (nothing in a preview) and returns the inputs mirrored with stdout and stderr.
func (p *commandProvider) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetProperties(), inOpts)
	if err != nil {
		return nil, err
	}
	name := req.GetName()
	if name == "" {
		name = resource.URN(req.GetUrn()).Name()
	}
	id, err := resource.NewUniqueHex(name, 8, 0)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		in, _ := parseInputs(news, true)
		props, err := plugin.MarshalProperties(previewState(news, in), outOpts)
		if err != nil {
			return nil, err
		}
		return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
	}
	in, failures := parseInputs(news, false)
	if len(failures) > 0 {
		return nil, failureError(failures)
	}
	state := stateOf(news, runResult{})
	if in.Create != nil {
		if state, err = p.apply(ctx, req.GetUrn(), req.GetTimeout(), *in.Create, in, news, runResult{}); err != nil {
			return nil, err
		}
	}
	props, err := plugin.MarshalProperties(state, outOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: id, Properties: props}, nil
}

// Update runs `update`, else `create`, else nothing, with the new inputs and the previous outputs.
func (p *commandProvider) Update(ctx context.Context, req *pulumirpc.UpdateRequest) (*pulumirpc.UpdateResponse, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	news, err := plugin.UnmarshalProperties(req.GetNews(), inOpts)
	if err != nil {
		return nil, err
	}
	olds, err := plugin.UnmarshalProperties(req.GetOlds(), inOpts)
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		in, _ := parseInputs(news, true)
		props, err := plugin.MarshalProperties(previewState(news, in), outOpts)
		if err != nil {
			return nil, err
		}
		return &pulumirpc.UpdateResponse{Properties: props}, nil
	}
	in, failures := parseInputs(news, false)
	if len(failures) > 0 {
		return nil, failureError(failures)
	}
	previous := previousOutputs(olds)
	command := in.Update
	if command == nil {
		command = in.Create
	}
	var state resource.PropertyMap
	if command == nil {
		state = stateOf(news, previous)
		for _, k := range []resource.PropertyKey{"assets", "archive"} {
			if v, ok := olds[k]; ok {
				state[k] = v
			}
		}
		keepOnlyGivenAssets(state, in)
	} else if state, err = p.apply(ctx, req.GetUrn(), req.GetTimeout(), *command, in, news, previous); err != nil {
		return nil, err
	}
	props, err := plugin.MarshalProperties(state, outOpts)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.UpdateResponse{Properties: props}, nil
}

// Delete runs `delete` with what the state holds: the last applied inputs and outputs.
func (p *commandProvider) Delete(ctx context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	state, err := plugin.UnmarshalProperties(req.GetProperties(), inOpts)
	if err != nil {
		return nil, err
	}
	in, failures := parseInputs(state, false)
	if len(failures) > 0 {
		return nil, failureError(failures)
	}
	if in.Delete == nil {
		return &emptypb.Empty{}, nil
	}
	if _, err := p.runCommand(ctx, req.GetUrn(), req.GetTimeout(), *in.Delete, in, previousOutputs(state)); err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// Read returns the state unchanged: a command has nothing to read back, so refresh is a no-op.
func (p *commandProvider) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	if err := checkType(req.GetUrn(), req.GetType()); err != nil {
		return nil, err
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Cancel stops every command in flight (its whole process group) and every one asked for later.
func (p *commandProvider) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	p.cancel(errCancelled)
	return &emptypb.Empty{}, nil
}

// apply runs command and returns the new state: the inputs mirrored, stdout, stderr and any assets.
func (p *commandProvider) apply(ctx context.Context, urn string, timeout float64, command string,
	in commandInputs, news resource.PropertyMap, previous runResult,
) (resource.PropertyMap, error) {
	result, err := p.runCommand(ctx, urn, timeout, command, in, previous)
	if err != nil {
		return nil, err
	}
	state := stateOf(news, result)
	if err := addAssets(state, in, runDir(in)); err != nil {
		return nil, err
	}
	return state, nil
}

// runCommand runs one command under the step's deadline (customTimeouts) and the provider's Cancel.
func (p *commandProvider) runCommand(ctx context.Context, urn string, timeout float64, command string,
	in commandInputs, previous runResult,
) (runResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(p.cancelled, func() { cancel(context.Cause(p.cancelled)) })
	defer stop()
	if timeout > 0 {
		d := time.Duration(timeout * float64(time.Second))
		var cancelTimeout context.CancelFunc
		ctx, cancelTimeout = context.WithTimeoutCause(ctx, d,
			fmt.Errorf("timed out after %s (customTimeouts): the command's process group was killed", d))
		defer cancelTimeout()
	}
	r := runner{grace: p.grace, drain: p.drain}
	if p.host != nil {
		logCtx := context.WithoutCancel(ctx)
		r.logLine = func(line string) {
			// A status line that cannot be delivered must not fail (or stall) the command.
			_ = p.host.LogStatus(logCtx, diag.Info, resource.URN(urn), line)
		}
	}
	dir := runDir(in)
	env := buildEnv(os.Environ(), in.Environment, previous.Stdout, previous.Stderr, in.AddPreviousOutputInEnv)
	stdin := ""
	if in.Stdin != nil {
		stdin = *in.Stdin
	}
	return r.run(ctx, runSpec{
		Command: command, Argv: commandArgv(in.Interpreter, command), Dir: dir, Env: env, Stdin: stdin,
		LogStdout: in.logStdout(), LogStderr: in.logStderr(),
	})
}

// runDir is `dir` verbatim, else the plugin's working directory (the project directory).
func runDir(in commandInputs) string {
	if in.Dir != nil {
		return *in.Dir
	}
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	return wd
}

// stateOf is the inputs mirrored (secrets where they were) plus stdout and stderr. Output that is not
// valid UTF-8 is made valid: a protobuf string cannot carry it.
func stateOf(news resource.PropertyMap, result runResult) resource.PropertyMap {
	state := normalizeMap(news)
	for k := range outputOnlyKeys {
		delete(state, resource.PropertyKey(k))
	}
	state["stdout"] = resource.NewProperty(strings.ToValidUTF8(result.Stdout, "\uFFFD"))
	state["stderr"] = resource.NewProperty(strings.ToValidUTF8(result.Stderr, "\uFFFD"))
	return state
}

// previewState is what a preview shows: the inputs as they are (unknowns included), stdout and stderr
// (and assets/archive when asked for) unknown, since nothing ran.
func previewState(news resource.PropertyMap, in commandInputs) resource.PropertyMap {
	state := normalizeMap(news)
	unknown := resource.MakeComputed(resource.NewProperty(""))
	state["stdout"], state["stderr"] = unknown, unknown
	if in.AssetPaths != nil {
		state["assets"] = unknown
	}
	if in.ArchivePaths != nil {
		state["archive"] = unknown
	}
	return state
}

// previousOutputs reads stdout and stderr out of a state (empty when absent).
func previousOutputs(state resource.PropertyMap) runResult {
	get := func(k resource.PropertyKey) string {
		v := plain(state[k])
		if v.IsString() {
			return v.StringValue()
		}
		return ""
	}
	return runResult{Stdout: get("stdout"), Stderr: get("stderr")}
}

// keepOnlyGivenAssets drops assets/archive a state carried over when their paths are no longer given.
func keepOnlyGivenAssets(state resource.PropertyMap, in commandInputs) {
	if in.AssetPaths == nil {
		delete(state, "assets")
	}
	if in.ArchivePaths == nil {
		delete(state, "archive")
	}
}
