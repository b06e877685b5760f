using CalicoBpf.Fuzz;
using SharpFuzz;

// CalicoBpf.Fuzz TARGET             run under afl-fuzz (SharpFuzz's out-of-process loop)
// CalicoBpf.Fuzz TARGET --replay DIR  run every file of DIR in-process (the corpus, the findings)
if (args.Length == 0 || !ClusterTargets.EveryTarget.TryGetValue(args[0], out Action<byte[]>? target))
{
    Console.Error.WriteLine($"usage: CalicoBpf.Fuzz {string.Join('|', ClusterTargets.EveryTarget.Keys)} [--replay DIR]");
    return 2;
}

if (args.Length == 3 && args[1] == "--replay")
{
    int n = 0;
    foreach (string file in Directory.EnumerateFiles(args[2], "*", SearchOption.AllDirectories))
    {
        target(File.ReadAllBytes(file));
        n++;
    }

    Console.WriteLine($"{args[0]}: {n} inputs replayed");
    return 0;
}

Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target(buffer.ToArray());
});
return 0;
