package hub

import "strings"

// Rule is one check of the linter. docs/lint.md explains each rule: what it
// finds, why it matters and how to fix it.
type Rule struct {
	// ID is stable across releases ("RP302"); Name is a readable slug
	// ("cuda-mismatch"). --disable and comfypod.lint.json accept either.
	ID   string
	Name string
	// Severity is the rule's usual severity; a few rules report milder cases
	// with a milder one.
	Severity Severity
	// Summary says in one line what the rule finds.
	Summary string
	// Fixable says whether ApplyFixes can fix its findings.
	Fixable bool
}

// Rule ids. Keep them stable: users silence rules by id.
const (
	ruleInvalidJSON     = "RP001"
	ruleJSONBOM         = "RP002"
	ruleDuplicateKey    = "RP003"
	ruleHubMissing      = "RP004"
	ruleRunpodDir       = "RP005"
	ruleTestsMissing    = "RP006"
	ruleTestsDisabled   = "RP007"
	ruleDockerMissing   = "RP008"
	ruleHandlerMissing  = "RP009"
	ruleReadmeMissing   = "RP010"
	ruleStrayCopy       = "RP011"
	ruleUnknownField    = "RP012"
	ruleFieldType       = "RP013"
	ruleLintConfig      = "RP014"
	ruleHubNotObject    = "RP101"
	ruleRequired        = "RP102"
	ruleTypeServerless  = "RP103"
	ruleCategory        = "RP104"
	ruleRunsOn          = "RP105"
	ruleContainerDisk   = "RP106"
	ruleEndpointType    = "RP107"
	ruleGPUIDsType      = "RP201"
	ruleGPUIDsUnknown   = "RP202"
	ruleGPUIDsTypeID    = "RP203"
	ruleGPUIDsSpacing   = "RP204"
	ruleGPUMissing      = "RP205"
	ruleGPUCount        = "RP206"
	ruleCPUFlavor       = "RP207"
	ruleCPUFlavorBad    = "RP208"
	ruleTestGPUUnknown  = "RP209"
	ruleTestGPUPool     = "RP210"
	ruleTestGPUOutside  = "RP211"
	ruleTestGPUExcluded = "RP212"
	ruleTestGPUMissing  = "RP213"
	ruleTestGPUCount    = "RP214"
	ruleCUDAUnknown     = "RP301"
	ruleCUDAMismatch    = "RP302"
	ruleCUDASubset      = "RP303"
	ruleCUDAHubNew      = "RP304"
	ruleCUDAOnlyNew     = "RP305"
	ruleBlackwell       = "RP306"
	ruleDockerCUDA      = "RP307"
	ruleTestsNotObject  = "RP401"
	ruleTestsEmpty      = "RP402"
	ruleTestInput       = "RP403"
	ruleTestName        = "RP404"
	ruleTestNameDup     = "RP405"
	ruleTimeoutType     = "RP406"
	ruleTimeoutSeconds  = "RP407"
	ruleTimeoutShort    = "RP408"
	ruleTimeoutMissing  = "RP409"
	ruleInputWrapped    = "RP410"
	ruleLBQueueTests    = "RP411"
	ruleEnvEntry        = "RP501"
	ruleInputType       = "RP502"
	ruleSelectDefault   = "RP503"
	ruleBooleanValues   = "RP504"
	ruleRequiredDefault = "RP505"
	rulePresetKey       = "RP506"
	ruleEnvDuplicate    = "RP507"
	ruleDefaultType     = "RP508"
	ruleDockerParse     = "RP601"
	ruleDockerSecret    = "RP602"
	ruleDockerSecretEnv = "RP603"
	ruleDockerPlatform  = "RP604"
	ruleVolumePath      = "RP605"
	ruleWorkflowUI      = "RP701"
	ruleWorkflowInvalid = "RP702"
	ruleNodeMissing     = "RP703"
	ruleNodeInput       = "RP704"
	ruleManifestBinding = "RP705"
	ruleNoWorkflow      = "RP706"
	ruleManifestInvalid = "RP707"
)

// Rules returns every rule, in id order.
func Rules() []Rule {
	return []Rule{
		{ruleInvalidJSON, "invalid-json", Error, "hub.json, tests.json or another package JSON file is not valid JSON", false},
		{ruleJSONBOM, "json-bom", Warning, "a JSON file starts with a UTF-8 byte order mark, which strict JSON parsers reject", false},
		{ruleDuplicateKey, "duplicate-key", Warning, "a key appears twice in one JSON object; only the last one counts", false},
		{ruleHubMissing, "hub-missing", Error, "the package has no .runpod/hub.json", false},
		{ruleRunpodDir, "runpod-dir", Error, "hub.json or tests.json sits in runpod/ (no dot) or at the root, where the Hub does not look", false},
		{ruleTestsMissing, "tests-missing", Error, "the package has no .runpod/tests.json, which Hub releases require", false},
		{ruleTestsDisabled, "tests-disabled", Warning, "the tests file is renamed (tests_.json, tests_json, test.json…), so the Hub runs no tests", false},
		{ruleDockerMissing, "dockerfile-missing", Error, "no Dockerfile in .runpod/ or at the package root", false},
		{ruleHandlerMissing, "handler-missing", Warning, "no handler.py in .runpod/ or at the package root", false},
		{ruleReadmeMissing, "readme-missing", Warning, "no README.md in .runpod/ or at the package root", false},
		{ruleStrayCopy, "stray-copy", Info, "a hub.json or tests.json at the root is ignored because .runpod/ has one", false},
		{ruleUnknownField, "unknown-field", Warning, "a field the Hub does not know, often a typo of one it does", false},
		{ruleFieldType, "field-type", Error, "a field holds the wrong JSON type", false},
		{ruleLintConfig, "lint-config", Error, "comfypod.lint.json is not valid", false},
		{ruleHubNotObject, "hub-not-object", Error, "hub.json is not a JSON object", false},
		{ruleRequired, "required-field", Error, "a required hub.json field is missing", false},
		{ruleTypeServerless, "type-not-serverless", Error, "hub.json type is not \"serverless\"", false},
		{ruleCategory, "unknown-category", Warning, "category is not audio, embedding, language, video or image", false},
		{ruleRunsOn, "unknown-runs-on", Error, "config.runsOn is not \"GPU\" or \"CPU\"", false},
		{ruleContainerDisk, "container-disk", Error, "config.containerDiskInGb is not a positive integer", false},
		{ruleEndpointType, "endpoint-type", Warning, "config.endpointType is not \"LB\"", false},
		{ruleGPUIDsType, "gpu-ids-type", Error, "config.gpuIds is not a comma-separated string", false},
		{ruleGPUIDsUnknown, "gpu-ids-unknown", Error, "a gpuIds token is neither a GPU pool nor an excluded (-) GPU type id", false},
		{ruleGPUIDsTypeID, "gpu-ids-gpu-type", Warning, "gpuIds names a GPU type id where a pool id is expected", false},
		{ruleGPUIDsSpacing, "gpu-ids-spacing", Warning, "gpuIds has spaces around commas or empty items", true},
		{ruleGPUMissing, "gpu-missing", Warning, "a GPU package without gpuIds or gpuCount", false},
		{ruleGPUCount, "gpu-count", Error, "gpuCount is not a positive integer", false},
		{ruleCPUFlavor, "cpu-flavor-missing", Error, "a CPU package without config.cpuFlavor", false},
		{ruleCPUFlavorBad, "cpu-flavor-unknown", Warning, "cpuFlavor is not a known CPU flavor", false},
		{ruleTestGPUUnknown, "tests-gpu-unknown", Error, "tests.json gpuTypeId is not a GPU type id", false},
		{ruleTestGPUPool, "tests-gpu-pool", Error, "tests.json gpuTypeId is a pool id; it takes one GPU type id", false},
		{ruleTestGPUOutside, "tests-gpu-outside", Error, "the test GPU is in none of hub.json's gpuIds pools, so the test never starts", false},
		{ruleTestGPUExcluded, "tests-gpu-excluded", Error, "the test GPU is excluded by hub.json's gpuIds, so the test never starts", false},
		{ruleTestGPUMissing, "tests-gpu-missing", Error, "a GPU package whose tests.json config has no gpuTypeId", false},
		{ruleTestGPUCount, "tests-gpu-count", Warning, "tests.json config.gpuCount is missing or differs from hub.json's", false},
		{ruleCUDAUnknown, "cuda-unknown", Warning, "an allowedCudaVersions value is not a known CUDA version", false},
		{ruleCUDAMismatch, "cuda-mismatch", Error, "tests.json allows CUDA versions hub.json does not", true},
		{ruleCUDASubset, "cuda-subset", Warning, "tests.json's allowedCudaVersions is missing or narrower than hub.json's", true},
		{ruleCUDAHubNew, "cuda-hub-new", Info, "allowedCudaVersions lists 12.8+, which the Hub's test hosts lack", false},
		{ruleCUDAOnlyNew, "cuda-only-new", Error, "allowedCudaVersions allows only 12.8+, so Hub tests find no machine", false},
		{ruleBlackwell, "blackwell-cuda", Error, "a Blackwell GPU (RTX 5090, B200, RTX PRO 6000) with CUDA versions that cannot run it on the Hub", false},
		{ruleDockerCUDA, "docker-cuda", Warning, "the Docker base image needs a newer CUDA than allowedCudaVersions lets through", false},
		{ruleTestsNotObject, "tests-not-object", Error, "tests.json is not a JSON object with a tests array", false},
		{ruleTestsEmpty, "tests-empty", Warning, "tests.json has no tests", false},
		{ruleTestInput, "test-input", Error, "a test has no input object", false},
		{ruleTestName, "test-name", Error, "a test has no name", false},
		{ruleTestNameDup, "test-name-duplicate", Warning, "two tests have the same name", false},
		{ruleTimeoutType, "timeout-type", Error, "a test timeout is not a positive integer of milliseconds", false},
		{ruleTimeoutSeconds, "timeout-seconds", Warning, "a test timeout below 1000 looks like seconds; it is in milliseconds", false},
		{ruleTimeoutShort, "timeout-short", Warning, "a test timeout is too short to load a model of the package's size", false},
		{ruleTimeoutMissing, "timeout-missing", Info, "a test has no timeout", false},
		{ruleInputWrapped, "test-input-wrapped", Warning, "a test input is wrapped in {\"input\": …}; tests take the handler input itself", true},
		{ruleLBQueueTests, "lb-queue-tests", Warning, "a load-balancing (LB) package with queue-style tests", false},
		{ruleEnvEntry, "env-entry", Error, "an env entry is not {key, value} or {key, input}", false},
		{ruleInputType, "input-type-unknown", Warning, "an env input type is not string, number, boolean or huggingface", false},
		{ruleSelectDefault, "select-default", Error, "a select input's default is not among its options", false},
		{ruleBooleanValues, "boolean-values", Warning, "a boolean input without trueValue/falseValue", false},
		{ruleRequiredDefault, "required-no-default", Warning, "a required input with no default that no preset sets", false},
		{rulePresetKey, "preset-unknown-key", Warning, "a preset sets a key that is not an env key", false},
		{ruleEnvDuplicate, "env-duplicate-key", Warning, "two env entries have the same key", false},
		{ruleDefaultType, "input-default-type", Warning, "an input default does not fit its type or bounds", false},
		{ruleDockerParse, "dockerfile-parse", Error, "the Dockerfile does not parse", false},
		{ruleDockerSecret, "dockerfile-secret", Error, "the Dockerfile bakes a literal token, key or secret into the image", false},
		{ruleDockerSecretEnv, "dockerfile-secret-env", Warning, "the Dockerfile copies a secret build argument into ENV, which keeps it in the image", false},
		{ruleDockerPlatform, "dockerfile-platform", Info, "nothing pins the image to linux/amd64, the only platform RunPod runs", false},
		{ruleVolumePath, "volume-model-path", Warning, "a ComfyUI model folder directly under /runpod-volume instead of /runpod-volume/models", false},
		{ruleWorkflowUI, "workflow-ui-format", Warning, "a workflow JSON is ComfyUI's UI format, not the API format workers submit", false},
		{ruleWorkflowInvalid, "workflow-invalid", Warning, "a workflow JSON the package ships is broken", false},
		{ruleNodeMissing, "handler-node-missing", Error, "handler.py writes to a node id that no shipped workflow has", false},
		{ruleNodeInput, "handler-node-input", Error, "handler.py writes an input the node with that id does not have", false},
		{ruleManifestBinding, "manifest-binding", Error, "a package manifest binding does not fit its workflow", false},
		{ruleNoWorkflow, "handler-no-workflow", Info, "handler.py writes node ids but the package ships no API workflow to check them against", false},
		{ruleManifestInvalid, "manifest-invalid", Error, "the package manifest does not parse or names missing workflows", false},
	}
}

// ruleIndex maps ids and names to rules.
type ruleIndex map[string]Rule

func newRuleIndex() ruleIndex {
	idx := ruleIndex{}
	for _, r := range Rules() {
		idx[r.ID] = r
		idx[r.Name] = r
	}
	return idx
}

// lookup finds a rule by id (any case) or name.
func (idx ruleIndex) lookup(s string) (Rule, bool) {
	s = strings.TrimSpace(s)
	if r, ok := idx[strings.ToUpper(s)]; ok {
		return r, true
	}
	r, ok := idx[strings.ToLower(s)]
	return r, ok
}
