// What every cmdlet file uses: PowerShell and the engine's layers (Core keeps its using lines per file: LayeringTests reads them).
global using System.Management.Automation;
global using CalicoBpf.Maps;
global using CalicoBpf.Cluster;
global using CalicoBpf.Transport;
global using CalicoBpf.Interop;
global using CalicoBpf.Arguments;
global using CalicoBpf.Sampling;
global using CalicoBpf.Bundles;
