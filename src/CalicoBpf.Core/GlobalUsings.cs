// The framework's namespaces Core's files share. Core's own namespaces stay in each file's using
// lines, where LayeringTests reads them (it fails on a global using of one).
global using System.Net;
global using System.Text;
global using System.Globalization;
global using System.Text.Json;
global using System.Buffers.Binary;
global using System.Text.Json.Nodes;
global using System.Text.RegularExpressions;
global using System.Runtime.InteropServices;
