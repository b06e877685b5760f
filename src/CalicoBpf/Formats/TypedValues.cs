using System.Management.Automation;
using System.Net;

namespace CalicoBpf.Formats;

/// <summary>
/// The typed values behind the text properties of the output objects: an address or a duration is
/// text on the object (so ConvertTo-Json and Export-Csv write "10.65.0.2" and "00:11:08.2828276",
/// also after Select-Object), and its IPAddress or TimeSpan is the hidden property NAME + "Value"
/// (CalicoBpf.Types.ps1xml points each one here): <c>Sort-Object AgeValue</c>,
/// <c>$e.SourceAddressValue.AddressFamily</c>. Views read them too. Views.Tests.ps1 holds this list
/// to the model: every internal *Value property has its member here, of its type.
/// </summary>
public static class TypedValues
{
    public static IPAddress ConntrackEntrySourceAddress(PSObject instance) => ((ConntrackEntry)instance.BaseObject).SourceAddressValue;

    public static IPAddress ConntrackEntryDestinationAddress(PSObject instance) => ((ConntrackEntry)instance.BaseObject).DestinationAddressValue;

    public static IPAddress? ConntrackEntryServiceAddress(PSObject instance) => ((ConntrackEntry)instance.BaseObject).ServiceAddressValue;

    public static IPAddress? ConntrackEntryTunnelAddress(PSObject instance) => ((ConntrackEntry)instance.BaseObject).TunnelAddressValue;

    public static IPAddress? ConntrackEntryOriginalSourceAddress(PSObject instance) => ((ConntrackEntry)instance.BaseObject).OriginalSourceAddressValue;

    public static TimeSpan ConntrackEntryAge(PSObject instance) => ((ConntrackEntry)instance.BaseObject).AgeValue;

    public static IPAddress ConntrackKeyAddressA(PSObject instance) => ((ConntrackKey)instance.BaseObject).AddressAValue;

    public static IPAddress ConntrackKeyAddressB(PSObject instance) => ((ConntrackKey)instance.BaseObject).AddressBValue;

    public static IPAddress NatFrontendAddress(PSObject instance) => ((NatFrontend)instance.BaseObject).AddressValue;

    public static TimeSpan NatFrontendAffinityTimeout(PSObject instance) => ((NatFrontend)instance.BaseObject).AffinityTimeoutValue;

    public static IPAddress? NatBackendAddress(PSObject instance) => ((NatBackend)instance.BaseObject).AddressValue;

    public static IPAddress NatAffinityServiceAddress(PSObject instance) => ((NatAffinity)instance.BaseObject).ServiceAddressValue;

    public static IPAddress NatAffinityClientAddress(PSObject instance) => ((NatAffinity)instance.BaseObject).ClientAddressValue;

    public static IPAddress NatAffinityBackendAddress(PSObject instance) => ((NatAffinity)instance.BaseObject).BackendAddressValue;

    public static TimeSpan NatAffinityAge(PSObject instance) => ((NatAffinity)instance.BaseObject).AgeValue;

    public static IPAddress MaglevEntryBackendAddress(PSObject instance) => ((MaglevEntry)instance.BaseObject).BackendAddressValue;

    public static IPAddress RouteAddress(PSObject instance) => ((Route)instance.BaseObject).AddressValue;

    public static IPAddress? RouteNextHop(PSObject instance) => ((Route)instance.BaseObject).NextHopValue;

    public static IPAddress ArpEntryAddress(PSObject instance) => ((ArpEntry)instance.BaseObject).AddressValue;

    public static IPAddress IpSetMemberAddress(PSObject instance) => ((IpSetMember)instance.BaseObject).AddressValue;

    public static TimeSpan? TraceLogEntryTimestamp(PSObject instance) => ((TraceLogEntry)instance.BaseObject).TimestampValue;

    public static TimeSpan? TraceLogEntryExecutionTime(PSObject instance) => ((TraceLogEntry)instance.BaseObject).ExecutionTimeValue;

    public static TimeSpan? FelixBpfConfigBpfKubeProxyMinSyncPeriod(PSObject instance) => ((FelixBpfConfig)instance.BaseObject).BpfKubeProxyMinSyncPeriodValue;

    public static TimeSpan? FelixBpfConfigBpfIPFragTimeout(PSObject instance) => ((FelixBpfConfig)instance.BaseObject).BpfIPFragTimeoutValue;

    public static IPAddress FlowPredictionSourceAddress(PSObject instance) => ((FlowPrediction)instance.BaseObject).SourceAddressValue;

    public static IPAddress FlowPredictionDestinationAddress(PSObject instance) => ((FlowPrediction)instance.BaseObject).DestinationAddressValue;

    public static IPAddress? FlowPredictionBackendAddress(PSObject instance) => ((FlowPrediction)instance.BaseObject).BackendAddressValue;

    public static TimeSpan CounterSampleInterval(PSObject instance) => ((CounterSample)instance.BaseObject).IntervalValue;

    public static TimeSpan PolicyRuleSampleInterval(PSObject instance) => ((PolicyRuleSample)instance.BaseObject).IntervalValue;

    public static TimeSpan ProgramStatisticRunTime(PSObject instance) => ((ProgramStatistic)instance.BaseObject).RunTimeValue;

    public static TimeSpan ProgramStatisticWindow(PSObject instance) => ((ProgramStatistic)instance.BaseObject).WindowValue;
}
