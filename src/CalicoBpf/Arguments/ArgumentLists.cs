namespace CalicoBpf.Arguments;

/// <summary>What the argument transformations share: a parameter that takes a list gets each item transformed.</summary>
internal static class ArgumentLists
{
    public static object Map(object inputData, Func<object, object> one)
    {
        object value = inputData is PSObject o ? o.BaseObject : inputData;
        if (value is string || value is not System.Collections.IEnumerable items)
        {
            return one(value);
        }

        var result = new List<object>();
        foreach (object? item in items)
        {
            result.Add(one(item is PSObject p ? p.BaseObject : item!));
        }

        return result.ToArray();
    }
}
