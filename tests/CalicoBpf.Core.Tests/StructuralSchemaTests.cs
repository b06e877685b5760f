using System.Text.Json.Nodes;
using CalicoBpf.Cluster;
using CalicoBpf.Isolation;

namespace CalicoBpf.Tests;

/// <summary>The real Calico CRD schemas (tests/fixtures/calico), applied as the API server applies them.</summary>
public class StructuralSchemaTests
{
    private static string Fixture(string version, string file)
    {
        string dir = AppContext.BaseDirectory;
        while (!Directory.Exists(Path.Combine(dir, "tests", "fixtures", "calico")))
        {
            dir = Path.GetDirectoryName(dir) ?? throw new DirectoryNotFoundException("tests/fixtures/calico is not above the test binaries.");
        }

        return Path.Combine(dir, "tests", "fixtures", "calico", version, file);
    }

    private static StructuralSchema FelixSchema(string version = "head")
    {
        var crd = (JsonObject)JsonNode.Parse(DependencyLoadContext.Yaml.ToJsonDocuments(File.ReadAllText(Fixture(version, "crd.projectcalico.org_felixconfigurations.yaml")))[0])!;
        return new StructuralSchema(crd["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!.AsObject());
    }

    private static JsonObject Felix(string spec) => (JsonObject)JsonNode.Parse($$"""{"apiVersion":"crd.projectcalico.org/v1","kind":"FelixConfiguration","metadata":{"name":"default"},"spec":{{spec}}}""")!;

    [Fact]
    public void Valid_objects_pass()
    {
        Assert.Empty(FelixSchema().Validate(Felix("""{"bpfEnabled":true,"bpfLogLevel":"Debug","bpfKubeProxyMinSyncPeriod":"5s","vxlanPort":4789,"bpfExternalServiceMode":"DSR"}""")));
    }

    [Fact]
    public void Enum_pattern_type_and_range_errors_read_as_the_api_servers()
    {
        IReadOnlyList<FieldError> errors = FelixSchema().Validate(Felix("""{"bpfLogLevel":"Verbose","bpfAttachType":"XDP","bpfEnabled":"yes","bpfKubeProxyMinSyncPeriod":"5x"}"""));
        Assert.Contains(errors, e => e.Field == "spec.bpfLogLevel" && e.Message == "Invalid value: \"Verbose\": spec.bpfLogLevel in body should match '^(?i)(Off|Info|Debug)?$'");
        Assert.Contains(errors, e => e.Field == "spec.bpfAttachType" && e.Reason == "FieldValueNotSupported" && e.Message == "Unsupported value: \"XDP\": supported values: \"TC\", \"TCX\", \"Netkit\"");
        Assert.Contains(errors, e => e.Field == "spec.bpfEnabled" && e.Message == "Invalid value: \"string\": spec.bpfEnabled in body must be of type boolean: \"string\"");
        Assert.Contains(errors, e => e.Field == "spec.bpfKubeProxyMinSyncPeriod" && e.Reason == "FieldValueInvalid");
        Assert.Equal(4, errors.Count);
    }

    [Fact]
    public void Int_or_string_takes_either_but_nothing_else()
    {
        StructuralSchema schema = FelixSchema();
        Assert.Empty(schema.Validate(Felix("""{"bpfPSNATPorts":"20000:29999"}""")));
        Assert.Empty(schema.Validate(Felix("""{"bpfPSNATPorts":20000}""")));
        Assert.Contains(schema.Validate(Felix("""{"bpfPSNATPorts":true}""")), e => e.Field == "spec.bpfPSNATPorts" && e.Reason == "FieldValueTypeInvalid");
        Assert.Contains(schema.Validate(Felix("""{"bpfPSNATPorts":1.5}""")), e => e.Field == "spec.bpfPSNATPorts" && e.Reason == "FieldValueTypeInvalid");
    }

    [Fact]
    public void Duration_pattern_is_the_crds_as_written()
    {
        // The CRD's pattern has "\\." (a backslash, then any character), so the API server, like this
        // check, refuses a fractional "1.5s": the module must offer "1500ms" instead.
        StructuralSchema schema = FelixSchema();
        Assert.Empty(schema.Validate(Felix("""{"bpfKubeProxyMinSyncPeriod":"1500ms"}""")));
        Assert.Empty(schema.Validate(Felix("""{"bpfKubeProxyMinSyncPeriod":"1m30s"}""")));
        Assert.NotEmpty(schema.Validate(Felix("""{"bpfKubeProxyMinSyncPeriod":"1.5s"}""")));
    }

    [Fact]
    public void Nested_objects_are_checked_with_their_path()
    {
        Assert.Contains(FelixSchema().Validate(Felix("""{"routeTableRange":{"min":"one","max":2}}""")), e => e.Field == "spec.routeTableRange.min" && e.Reason == "FieldValueTypeInvalid");
    }

    [Fact]
    public void Unknown_fields_are_pruned_and_reported()
    {
        JsonObject o = Felix("""{"bpfEnabled":true,"bpfKubeProxyEndpointSlicesEnabled":true}""");
        Assert.Equal(new[] { "spec.bpfKubeProxyEndpointSlicesEnabled" }, FelixSchema().Prune(o));
        Assert.False(o["spec"]!.AsObject().ContainsKey("bpfKubeProxyEndpointSlicesEnabled"));
        Assert.True(o["spec"]!.AsObject().ContainsKey("bpfEnabled"));

        // v3.28 still has the field: nothing to prune.
        JsonObject old = Felix("""{"bpfKubeProxyEndpointSlicesEnabled":true}""");
        Assert.Empty(FelixSchema("v3.28.5").Prune(old));
        Assert.NotNull(FelixSchema("v3.28.5").Field("spec.bpfKubeProxyEndpointSlicesEnabled"));
        Assert.Null(FelixSchema().Field("spec.bpfKubeProxyEndpointSlicesEnabled"));
    }

    [Fact]
    public void Yaml_to_json_keeps_core_schema_types()
    {
        string json = DependencyLoadContext.Yaml.ToJsonDocuments("a: true\nb: '1'\nc: 1\nd: 1.5\ne: ~\nf: [x, 2]\n---\ng: h\n")[0];
        Assert.Equal("""{"a":true,"b":"1","c":1,"d":1.5,"e":null,"f":["x",2]}""", json);
        Assert.Equal(2, DependencyLoadContext.Yaml.ToJsonDocuments("a: 1\n---\nb: 2\n").Count);
    }
}
