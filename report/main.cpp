/// \file main.cpp
/// `report-gen`: regenerates report/out/ (index.html, report.tex, report.pdf)
/// and figures/ from the results on disk. Run by `make report`; trains nothing.

#include <boost/program_options.hpp>
#include <iostream>

#include "generator.h"

namespace po = boost::program_options;

int main(int argc, char** argv) {
  vaerepro::report::Options o;
  bool no_pdf = false, no_plots = false;
  po::options_description d("report-gen: the HTML and LaTeX report from results/\nOptions");
  d.add_options()("help,h", "print this help")(
      "results", po::value(&o.paths.results)->default_value(o.paths.results), "results folder")(
      "full-results", po::value(&o.paths.full_results)->default_value(o.paths.full_results),
      "full-budget runs kept apart (make chapter-01-full)")(
      "templates", po::value(&o.paths.templates)->default_value(o.paths.templates),
      "templates folder")(
      "published", po::value(&o.paths.published)->default_value(o.paths.published),
      "published numbers")("figures", po::value(&o.paths.figures)->default_value(o.paths.figures),
                           "where figures are drawn")(
      "out", po::value(&o.paths.out)->default_value(o.paths.out), "where the report is written")(
      "docs", po::value(&o.paths.docs_html)->default_value(o.paths.docs_html),
      "Doxygen HTML folder (linked)")("no-pdf", po::bool_switch(&no_pdf), "do not run latexmk")(
      "no-plots", po::bool_switch(&no_plots), "do not run gnuplot");
  try {
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, d), vm);
    if (vm.count("help")) {
      std::cout << d << "\n";
      return 0;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "report-gen: usage error: " << e.what() << " (see --help)\n";
    return 2;
  }
  o.pdf = !no_pdf;
  o.plots = !no_plots;
  try {
    const auto outcome = vaerepro::report::generate(o);
    for (const auto& s : outcome.skipped) std::cerr << "report-gen: skipped: " << s << "\n";
    for (const auto& w : outcome.warnings) std::cerr << "report-gen: warning: " << w << "\n";
    std::cout << "report-gen: wrote " << o.paths.out << "/index.html and " << o.paths.out
              << "/report.tex"
              << (outcome.pdf_built ? " and " + o.paths.out + "/report.pdf"
                                    : std::string(" (no PDF)"))
              << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "report-gen: error: " << e.what() << "\n";
    return 1;
  }
}
