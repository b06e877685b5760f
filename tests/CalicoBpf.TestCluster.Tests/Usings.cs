// Every test file here uses xunit and the cluster fixtures.
global using CalicoBpf.TestCluster.Tests.Support;
global using Xunit;
