# Remove-BpfConntrack with a filter removes exactly the entries Get-BpfConntrack with the same filter
# returns, no more, while traffic keeps adding entries: a generator (bpftool map update in a loop)
# writes TCP entries and UDP entries outside the filter's addresses the whole time.
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'TestSupport.psm1') -Force
    $script:kernel = Test-KernelAvailable
    $script:bpftool = [bool](Get-Command bpftool -CommandType Application -ErrorAction SilentlyContinue)
}

BeforeAll {
    Import-ModuleUnderTest -Simulation
}

Describe 'A filtered removal under live traffic' -Skip:(-not ($kernel -and $bpftool)) {
    BeforeAll {
        $fs = New-TestBpfFs
        $scenario = [CalicoBpf.Simulation.NodeScenario]::Parse("node: safety`nrandomSeed: 17`nconntrack: { tcp: 60, udp: 30 }`n")
        $sim = [CalicoBpf.Simulation.SimulatedDataplane]::Claim($fs.PinPath)
        try { $scenario.Seed($sim, [System.Collections.Generic.Dictionary[string, int]]::new()) } finally { $sim.Dispose() }
        $map = Join-Path $fs.PinPath 'cali_v4_ct4'
        $stopFile = Join-Path $TestDrive 'stop'
        $countFile = Join-Path $TestDrive 'written'
        # Keys: protocol, 3 pad bytes, address A, address B, port A, port B (reference section 1). TCP
        # 172.30.x.y -> 172.31.0.1:80 and UDP 172.30.x.y -> 172.31.0.2:53, one new connection a write.
        $script = @'
n=0; zeros=$(printf '00 %.0s' $(seq 88))
while [ ! -e "$2" ]; do
  a=$(( (n / 250) % 250 )); b=$(( n % 250 + 1 )); proto=$(( n % 2 == 0 ? 6 : 17 )); dst=$(( n % 2 == 0 ? 1 : 2 )); dport=$(( n % 2 == 0 ? 80 : 53 ))
  key=$(printf '%02x 00 00 00 ac 1e %02x %02x ac 1f 00 %02x %02x %02x %02x %02x' $proto $a $b $dst $(( 40000 % 256 )) $(( 40000 / 256 )) $(( dport % 256 )) $(( dport / 256 )))
  bpftool map update pinned "$1" key hex $key value hex $zeros && n=$(( n + 1 ))
done
echo $n > "$3"
'@
        $scriptFile = Join-Path $TestDrive 'generator.sh'
        Set-Content -Path $scriptFile -Value $script
        $generator = Start-Process bash -ArgumentList $scriptFile, $map, $stopFile, $countFile -PassThru
        $deadline = [DateTime]::UtcNow.AddSeconds(10)
        while (@(Get-BpfConntrack -PinPath $fs.PinPath -Address 172.30.0.0/16).Count -lt 20 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
    }

    AfterAll {
        if ($generator -and -not $generator.HasExited) { $null = New-Item -ItemType File -Force $stopFile; $null = $generator.WaitForExit(10000) }
        Remove-TestBpfFs $fs
    }

    It 'removes what Get returned and nothing else, while entries keep arriving' {
        $before = @(Get-BpfConntrack -PinPath $fs.PinPath -Protocol Tcp -Address 10.65.0.0/16)
        $want = @(Get-BpfConntrack -PinPath $fs.PinPath -Protocol Udp -Address 10.65.0.0/16)
        $want.Count | Should -Be 30
        $result = Remove-BpfConntrack -PinPath $fs.PinPath -Protocol Udp -Address 10.65.0.0/16 -Confirm:$false
        $during = @(Get-BpfConntrack -PinPath $fs.PinPath -Address 172.30.0.0/16).Count
        $null = New-Item -ItemType File -Force $stopFile
        $generator.WaitForExit(10000) | Should -BeTrue
        $written = [int](Get-Content $countFile)

        $result.Removed | Should -Be $want.Count
        @(Get-BpfConntrack -PinPath $fs.PinPath -Protocol Udp -Address 10.65.0.0/16) | Should -BeNullOrEmpty
        # Everything outside the filter is still there: the table's own TCP entries, and every entry
        # the generator wrote, before, during and after the removal (UDP ones included).
        @(Get-BpfConntrack -PinPath $fs.PinPath -Protocol Tcp -Address 10.65.0.0/16).Count | Should -Be $before.Count
        $during | Should -BeGreaterThan 20
        @(Get-BpfConntrack -PinPath $fs.PinPath -Address 172.30.0.0/16).Count | Should -Be $written
        @(Get-BpfConntrack -PinPath $fs.PinPath -Protocol Udp -Address 172.30.0.0/16).Count | Should -Be ([math]::Floor($written / 2))
    }
}
