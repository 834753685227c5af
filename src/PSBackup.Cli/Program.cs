return await PSBackup.Cli.CliApp.RunConsoleAsync(args);
