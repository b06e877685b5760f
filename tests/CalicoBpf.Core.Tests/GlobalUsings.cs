// What the test files of Core use: xunit, Core's layers, the simulator and the test support.
global using CalicoBpf.Interop;
global using CalicoBpf.Maps;
global using CalicoBpf.Transport;
global using CalicoBpf.Tests.Support;
global using CalicoBpf.Simulation;
global using Xunit;
global using CalicoBpf.Trace;
global using System.Net;
